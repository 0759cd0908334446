import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { DIALECTS } from '../testing/dialects.js';
import { type Gateway, startGateway } from '../testing/gateway.js';

interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<
    string,
    Record<string, { requestBody?: unknown; parameters?: Array<{ in: string; name: string }> }>
  >;
}

for (const dialect of DIALECTS) {
  describe(`health, metrics and the OpenAPI document (${dialect})`, () => {
    let gw: Gateway;

    before(async () => {
      gw = await startGateway(dialect);
    });
    after(async () => gw?.close());

    it('serves a valid OpenAPI 3 document listing the routes', async () => {
      const res = await gw.api('GET', '/api/openapi.json', { token: null });
      assert.equal(res.status, 200, res.text);
      const doc = res.body as OpenApiDoc;
      const validator = new Validator();
      const report = await validator.validate(structuredClone(res.body) as Record<string, unknown>);
      assert.equal(report.valid, true, JSON.stringify(report.errors, null, 2));
      assert.match(doc.openapi, /^3\.\d+\.\d+$/);
      assert.equal(doc.info.title, 'Warden API');

      for (const path of [
        '/healthz',
        '/readyz',
        '/api/whoami',
        '/api/connections',
        '/api/connections/{name}',
        '/api/keys',
        '/api/tokens',
        '/api/sessions',
        '/api/sessions/{id}',
        '/api/audit',
        '/api/audit/verify',
      ]) {
        assert.ok(doc.paths[path], `${path} is missing from ${Object.keys(doc.paths).join(', ')}`);
      }
      assert.deepEqual(Object.keys(doc.paths['/api/connections/{name}']!).sort(), ['delete', 'get', 'patch']);
      assert.deepEqual(
        doc.paths['/api/connections/{name}']!.get!.parameters!.map((p) => [p.in, p.name]),
        [['path', 'name']],
      );

      const create = doc.paths['/api/connections']!.post!.requestBody as {
        required: boolean;
        content: {
          'application/json': { schema: { properties: Record<string, unknown>; required: string[] } };
        };
      };
      const schema = create.content['application/json'].schema;
      for (const field of ['name', 'protocol', 'target', 'credentials'])
        assert.ok(schema.properties[field], field);
      assert.ok(schema.required.includes('name'));
      assert.ok(!JSON.stringify(doc).includes('secret_sealed'), 'the document describes a stored secret');
    });

    it('answers /healthz and /readyz (with the store dialect)', async () => {
      const health = await gw.api('GET', '/healthz', { token: null });
      assert.deepEqual([health.status, health.body], [200, { status: 'ok' }]);
      const ready = await gw.api('GET', '/readyz', { token: null });
      assert.equal(ready.status, 200, ready.text);
      const body = ready.body as {
        status: string;
        store: string;
        audit_queue: number;
        recorder_queue: number;
      };
      assert.deepEqual(
        [body.status, body.store, typeof body.audit_queue, body.recorder_queue],
        ['ready', dialect, 'number', 0],
      );
    });

    it('exports Prometheus metrics with warden_http_requests_total and the audit and recorder queues', async () => {
      assert.equal((await gw.api('GET', '/api/whoami')).status, 200);
      const res = await fetch(`${gw.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      assert.match(text, /^# TYPE warden_http_requests_total counter$/m);
      assert.match(
        text,
        /^warden_http_requests_total\{method="GET",route="\/api\/whoami",status="200"\} [1-9]\d*$/m,
      );
      assert.match(text, /^# TYPE warden_http_request_duration_seconds histogram$/m);
      assert.match(text, /^# TYPE warden_audit_records_total counter$/m);
      assert.match(text, /^warden_audit_queue \d+$/m);
      assert.match(text, /^warden_recorder_queue 0$/m);
      assert.match(text, /^# TYPE warden_recorder_dropped_total counter$/m);
      assert.match(text, /^warden_recorder_dropped_total 0$/m);
      assert.match(text, /^# TYPE warden_recorder_write_failures_total counter$/m);
    });

    it('lets no key reach the process log', async () => {
      await gw.stop();
      assert.deepEqual(await gw.leaks(), []);
    });
  });
}
