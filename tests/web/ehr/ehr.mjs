// The test EHR of PainPath's SMART App Launch tests (test tooling, not part of PainPath).
//
//   node ehr.mjs <config.json>
//
// One Node process, two listeners on 127.0.0.1:
// - the EHR's authorization server: oidc-provider (npm, pinned by package-lock.json) with its own
//   development login and consent pages, PKCE, token introspection, and a SMART launch context:
//   the `launch` and `aud` authorization parameters, `launch`/`launch/patient` and the
//   `patient/*` scopes, and the patient in context as an extra claim of the access token and a
//   `patient` field of the token response;
// - the EHR's FHIR front: `{base}/.well-known/smart-configuration` for each FHIR base (`/fhir`
//   advertises permission-v2 and grants `patient/*.rs`; `/v1/fhir` advertises only permission-v1
//   and grants `patient/*.read`), and FHIR reads proxied to the real FHIR server the tests start
//   (`upstream`) only with a bearer token that the authorization server's introspection endpoint
//   says is active, for this base, with a patient read scope, and only inside the token's
//   patient compartment; plus `/ehr/launch`, which starts an EHR launch of an app the way an EHR
//   does: it records a launch context and redirects to `{app}?launch=...&iss=...`, and
//   `/broken/fhir`, a FHIR base whose smart-configuration names no endpoints (a misconfigured EHR).
//
// config.json: {"authPort", "frontPort", "upstream" (FHIR base), "clientId" (a public client),
//               "confidentialClient": {"id", "secret"}, "redirectUris",
//               "standalonePatient" (the patient the EHR's picker gives a standalone launch),
//               "restrictedPatient" (tokens for this patient are withdrawn once issued)}
// Prints one JSON line when both listen: {"issuer", "front", "fhir", "fhirV1"}.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";

import Provider, { errors } from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const issuer = `http://127.0.0.1:${config.authPort}`;
const front = `http://127.0.0.1:${config.frontPort}`;
const BASES = {
  [`${front}/fhir`]: { path: "/fhir", scopes: ["patient/*.rs"], permission: "permission-v2" },
  [`${front}/v1/fhir`]: { path: "/v1/fhir", scopes: ["patient/*.read"], permission: "permission-v1" },
};
const READ_SCOPES = new Set(["patient/*.rs", "patient/*.read", "patient/*.r", "patient/*.*"]);
const FRONT_CLIENT = { id: "ehr-fhir-front", secret: randomBytes(24).toString("base64url") };

const launches = new Map(); // launch id -> {patient}
const grantContext = new Map(); // grant id -> {patient}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.clientId,
      token_endpoint_auth_method: "none",
      redirect_uris: config.redirectUris,
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
    {
      // the same app registered as a confidential client (client_secret_basic, and PKCE)
      client_id: config.confidentialClient.id,
      client_secret: config.confidentialClient.secret,
      token_endpoint_auth_method: "client_secret_basic",
      redirect_uris: config.redirectUris,
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
    {
      client_id: FRONT_CLIENT.id,
      client_secret: FRONT_CLIENT.secret,
      redirect_uris: [],
      grant_types: [],
      response_types: [],
    },
  ],
  scopes: ["openid", "fhirUser", "launch", "launch/patient"],
  claims: { openid: ["sub"], fhirUser: ["fhirUser"] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, fhirUser: `${front}/fhir/Practitioner/${id}` };
      },
    };
  },
  extraParams: ["launch", "aud"],
  pkce: { required: () => true },
  cookies: { keys: [randomBytes(32).toString("base64url")] },
  features: {
    devInteractions: { enabled: true },
    introspection: {
      enabled: true,
      allowedPolicy: async (ctx, client) => client.clientId === FRONT_CLIENT.id,
    },
    resourceIndicators: {
      enabled: true,
      // SMART's `aud` names the FHIR server the token is for; it must be one of this EHR's
      async defaultResource(ctx) {
        const aud = ctx.oidc.params?.aud;
        if (aud && !BASES[aud]) throw new errors.InvalidTarget("aud is not a FHIR server of this EHR");
        return aud || `${front}/fhir`;
      },
      useGrantedResource: async () => true,
      async getResourceServerInfo(ctx, resource) {
        const base = BASES[resource];
        if (!base) throw new errors.InvalidTarget();
        return { scope: ["launch", "launch/patient", ...base.scopes].join(" "),
          audience: resource, accessTokenFormat: "opaque" };
      },
    },
  },
  async extraTokenClaims(ctx, token) {
    const context = token.grantId ? grantContext.get(token.grantId) : undefined;
    return context ? { patient: context.patient } : undefined;
  },
});

// The launch context: on the authorization endpoint's way out (a code is issued), the grant is
// bound to the patient of the `launch` the app sent (EHR launch), or to the picker's patient
// (standalone launch asking for launch/patient). A launch id the EHR did not issue is refused.
provider.use(async (ctx, next) => {
  const launch = ctx.path === "/auth" ? ctx.query.launch : undefined;
  if (launch !== undefined && !launches.has(launch)) {
    ctx.status = 400;
    ctx.body = { error: "invalid_request", error_description: "unknown launch" };
    return;
  }
  await next();
  const route = ctx.oidc?.route;
  if (route === "authorization" || route === "resume") {
    const grant = ctx.oidc.entities?.Grant;
    const params = ctx.oidc.params || {};
    const scopes = String(params.scope || "").split(" ");
    if (grant?.jti) {
      if (params.launch && launches.has(params.launch)) {
        grantContext.set(grant.jti, launches.get(params.launch));
      } else if (scopes.includes("launch/patient")) {
        grantContext.set(grant.jti, { patient: config.standalonePatient });
      }
    }
  }
  if (route === "token" && ctx.body?.access_token) {
    const token = await provider.AccessToken.find(ctx.body.access_token);
    if (token?.extra?.patient) ctx.body = { ...ctx.body, patient: token.extra.patient };
    // a restricted chart: the EHR withdraws the token as soon as it is handed out, so its FHIR
    // server answers 401 (introspection: not active)
    if (token && token.extra?.patient === config.restrictedPatient) await token.destroy();
  }
});

// ---- the FHIR front ------------------------------------------------------------------------
function send(res, status, body, headers = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(text);
}

function outcome(code, text) {
  return { resourceType: "OperationOutcome", issue: [{ severity: "error", code, diagnostics: text }] };
}

function smartConfiguration(base) {
  return {
    issuer,
    authorization_endpoint: `${issuer}/auth`,
    token_endpoint: `${issuer}/token`,
    introspection_endpoint: `${issuer}/token/introspection`,
    jwks_uri: `${issuer}/jwks`,
    grant_types_supported: ["authorization_code"],
    response_types_supported: ["code"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: ["none", "client_secret_basic"],
    scopes_supported: ["openid", "fhirUser", "launch", "launch/patient", ...base.scopes],
    capabilities: ["launch-ehr", "launch-standalone", "client-public",
      "client-confidential-symmetric", "context-ehr-patient",
      "context-standalone-patient", "sso-openid-connect", base.permission],
  };
}

async function introspect(token) {
  const auth = Buffer.from(`${FRONT_CLIENT.id}:${FRONT_CLIENT.secret}`).toString("base64");
  const answer = await fetch(`${issuer}/token/introspection`, {
    method: "POST",
    headers: { Authorization: `Basic ${auth}`, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token }),
  });
  return answer.ok ? answer.json() : { active: false };
}

// The resource's patient: Patient/{id} reads and `patient`/`subject` search parameters.
function patientsAsked(rest, query) {
  const asked = [];
  const read = rest.match(/^Patient\/([^/?]+)/);
  if (read) asked.push(read[1]);
  for (const key of ["patient", "subject"]) {
    for (const value of query.getAll(key)) asked.push(value.replace(/^Patient\//, ""));
  }
  return asked;
}

async function proxy(req, res, baseUrl, rest, query) {
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization || "");
  if (!bearer) {
    send(res, 401, outcome("login", "a bearer token is needed"), { "WWW-Authenticate": "Bearer" });
    return;
  }
  const info = await introspect(bearer[1]);
  const audiences = [].concat(info.aud || []);
  if (!info.active || !audiences.includes(baseUrl)) {
    send(res, 401, outcome("login", "the access token is not active for this FHIR server"),
      { "WWW-Authenticate": 'Bearer error="invalid_token"' });
    return;
  }
  const scopes = String(info.scope || "").split(" ");
  if (!scopes.some((s) => READ_SCOPES.has(s)) || !info.patient) {
    send(res, 403, outcome("forbidden", "the access token grants no patient read access"),
      { "WWW-Authenticate": 'Bearer error="insufficient_scope"' });
    return;
  }
  if (patientsAsked(rest, query).some((p) => p !== info.patient)) {
    send(res, 403, outcome("forbidden", "outside the patient in context"));
    return;
  }
  const upstream = `${config.upstream}/${rest}${query.size ? `?${query}` : ""}`;
  const answer = await fetch(upstream, { headers: { Accept: "application/fhir+json" } });
  res.writeHead(answer.status, { "Content-Type": answer.headers.get("content-type") || "application/fhir+json" });
  res.end(Buffer.from(await answer.arrayBuffer()));
}

async function frontHandler(req, res) {
  const url = new URL(req.url, front);
  if (url.pathname === "/ehr/launch") {
    // an EHR launching an app: a launch context for the patient, then the app's launch URL
    const id = randomBytes(12).toString("base64url");
    launches.set(id, { patient: url.searchParams.get("patient") });
    const iss = `${front}${url.searchParams.get("base") || "/fhir"}`;
    const app = new URL(url.searchParams.get("app"));
    app.searchParams.set("launch", id);
    app.searchParams.set("iss", url.searchParams.get("iss") || iss);
    res.writeHead(302, { Location: app.toString() });
    res.end();
    return;
  }
  if (url.pathname === "/broken/fhir/.well-known/smart-configuration") {
    send(res, 200, { issuer }); // a misconfigured EHR: no endpoints
    return;
  }
  for (const [baseUrl, base] of Object.entries(BASES)) {
    if (url.pathname === `${base.path}/.well-known/smart-configuration`) {
      send(res, 200, smartConfiguration(base));
      return;
    }
    if (url.pathname.startsWith(`${base.path}/`) && req.method === "GET") {
      await proxy(req, res, baseUrl, url.pathname.slice(base.path.length + 1), url.searchParams);
      return;
    }
  }
  send(res, 404, outcome("not-found", "no such path"));
}

const frontServer = http.createServer((req, res) => {
  frontHandler(req, res).catch((error) => send(res, 500, outcome("exception", String(error))));
});
const authServer = provider.listen(config.authPort, "127.0.0.1");
frontServer.listen(config.frontPort, "127.0.0.1", () => {
  console.log(JSON.stringify({ issuer, front, fhir: `${front}/fhir`, fhirV1: `${front}/v1/fhir` }));
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => { authServer.close(); frontServer.close(); process.exit(0); });
}
