// fhir-kit-client (npm, 2.x) against a running PainPath:
//
//   node fhir_kit_client.mjs <FHIR base, e.g. http://127.0.0.1:PORT/fhir> <input Bundle file>
//
// Reads the CapabilityStatement (and asks the library's CapabilityTool what it says), a
// StructureDefinition, the $triage OperationDefinition (read and search by url), then runs $triage
// through the library's operation API with a Parameters holding the Bundle, and once with no
// bundle (an error the library must surface as the server's OperationOutcome). Prints one JSON
// report on stdout: what the library returned, trimmed to what the test asserts on.

import fs from 'node:fs';
import { CapabilityTool, Client } from 'fhir-kit-client';

const [baseUrl, bundleFile] = process.argv.slice(2);
const TRIAGE = 'https://painpath.dev/fhir/OperationDefinition/triage';

async function main() {
  const client = new Client({ baseUrl });
  const capability = await client.capabilityStatement();
  const tool = new CapabilityTool(capability);
  const profile = await client.read({ resourceType: 'StructureDefinition',
    id: 'painpath-pain-type' });
  const operation = await client.read({ resourceType: 'OperationDefinition', id: 'triage' });
  const found = await client.search({ resourceType: 'OperationDefinition',
    searchParams: { url: TRIAGE } });
  const bundle = JSON.parse(fs.readFileSync(bundleFile, 'utf8'));
  const result = await client.operation({
    name: '$triage',
    method: 'POST',
    input: { resourceType: 'Parameters', parameter: [{ name: 'bundle', resource: bundle }] },
  });
  let refused;
  try {
    await client.operation({ name: 'triage', input: { resourceType: 'Parameters' } });
    refused = { thrown: false };
  } catch (error) {
    refused = { thrown: true, status: error.response?.status, body: error.response?.data };
  }
  process.stdout.write(JSON.stringify({
    capability: {
      resourceType: capability.resourceType,
      fhirVersion: capability.fhirVersion,
      operations: (tool.serverCapabilities()?.operation ?? []).map((op) => op.definition),
      patientOperations: tool.capabilityContents({ resourceType: 'Patient',
        capabilityType: 'operation' }),
      canReadStructureDefinition: tool.resourceCan('StructureDefinition', 'read'),
    },
    profile: { url: profile.url, type: profile.type, kind: profile.kind,
      snapshot: profile.snapshot?.element?.length ?? 0 },
    operation: { url: operation.url, code: operation.code, system: operation.system,
      parameters: operation.parameter.map((p) => `${p.use}:${p.name}`) },
    search: { type: found.type, ids: (found.entry ?? []).map((e) => e.resource.id) },
    result,
    refused,
  }));
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  if (error.response) process.stderr.write(`${JSON.stringify(error.response.data)}\n`);
  process.exit(1);
});
