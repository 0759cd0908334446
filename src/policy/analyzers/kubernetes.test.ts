import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubernetesFacts } from '../facts.js';
import { analyzeKubernetesRequest } from './kubernetes.js';

type Info = Omit<KubernetesFacts, 'protocol_kind' | 'path' | 'is_resource_request'>;

function info(method: string, url: string): Info {
  const { protocol_kind, path, is_resource_request, ...rest } = analyzeKubernetesRequest(method, url);
  assert.equal(protocol_kind, 'k8s');
  assert.equal(is_resource_request, true, `${method} ${url} should be a resource request`);
  return rest;
}

function pod(verb: string, name: string | null, subresource: string | null = null): Info {
  return {
    verb,
    api_group: '',
    api_version: 'v1',
    resource: 'pods',
    subresource,
    namespace: 'default',
    name,
  };
}

describe('kubernetes request analyzer', () => {
  it('reads get and list of core pods', () => {
    assert.deepEqual(info('GET', '/api/v1/namespaces/default/pods/web-0'), pod('get', 'web-0'));
    assert.deepEqual(info('GET', '/api/v1/namespaces/default/pods'), pod('list', null));
    assert.deepEqual(info('HEAD', '/api/v1/namespaces/default/pods/web-0'), pod('get', 'web-0'));
  });

  it('turns ?watch=true and the legacy /watch/ prefix into watch', () => {
    assert.deepEqual(info('GET', '/api/v1/namespaces/default/pods?watch=true'), pod('watch', null));
    assert.deepEqual(
      info('GET', '/api/v1/namespaces/default/pods?watch=1&resourceVersion=10'),
      pod('watch', null),
    );
    assert.deepEqual(info('GET', '/api/v1/watch/namespaces/default/pods'), pod('watch', null));
    assert.deepEqual(info('GET', '/api/v1/watch/namespaces/default/pods/web-0'), pod('watch', 'web-0'));
    assert.deepEqual(info('GET', '/api/v1/namespaces/default/pods?watch=false'), pod('list', null));
  });

  it('maps write methods to create, update, patch, delete and deletecollection', () => {
    assert.deepEqual(info('POST', '/api/v1/namespaces/default/pods'), pod('create', null));
    assert.deepEqual(info('PUT', '/api/v1/namespaces/default/pods/web-0'), pod('update', 'web-0'));
    assert.deepEqual(info('PATCH', '/api/v1/namespaces/default/pods/web-0'), pod('patch', 'web-0'));
    assert.deepEqual(info('DELETE', '/api/v1/namespaces/default/pods/web-0'), pod('delete', 'web-0'));
    assert.deepEqual(info('DELETE', '/api/v1/namespaces/default/pods'), pod('deletecollection', null));
  });

  it('sees kubectl exec as create on the pods/exec subresource', () => {
    assert.deepEqual(
      info('POST', '/api/v1/namespaces/default/pods/web-0/exec?command=sh&stdin=true&stdout=true&tty=true'),
      pod('create', 'web-0', 'exec'),
    );
    // Older clients open exec and attach with GET (websocket upgrade).
    assert.deepEqual(
      info('GET', '/api/v1/namespaces/default/pods/web-0/exec?command=ls'),
      pod('get', 'web-0', 'exec'),
    );
    assert.deepEqual(
      info('POST', '/api/v1/namespaces/default/pods/web-0/attach'),
      pod('create', 'web-0', 'attach'),
    );
    assert.deepEqual(
      info('POST', '/api/v1/namespaces/default/pods/web-0/portforward'),
      pod('create', 'web-0', 'portforward'),
    );
  });

  it('sees kubectl logs -f as get on pods/log', () => {
    assert.deepEqual(
      info('GET', '/api/v1/namespaces/default/pods/web-0/log?container=app&follow=true'),
      pod('get', 'web-0', 'log'),
    );
  });

  it('reads status and scale subresources of grouped resources', () => {
    assert.deepEqual(info('PUT', '/apis/apps/v1/namespaces/prod/deployments/api/scale'), {
      verb: 'update',
      api_group: 'apps',
      api_version: 'v1',
      resource: 'deployments',
      subresource: 'scale',
      namespace: 'prod',
      name: 'api',
    });
    assert.equal(info('PATCH', '/apis/apps/v1/namespaces/prod/deployments/api/status').subresource, 'status');
  });

  it('treats the proxy verb as taking no subresource', () => {
    assert.deepEqual(
      info('GET', '/api/v1/proxy/namespaces/default/pods/web-0/metrics'),
      pod('proxy', 'web-0'),
    );
    assert.deepEqual(info('GET', '/api/v1/namespaces/default/services/web:80/proxy/admin'), {
      ...pod('get', 'web:80', 'proxy'),
      resource: 'services',
    });
  });

  it('reads namespaces/<name> as the namespaces resource itself', () => {
    const expected = {
      verb: 'get',
      api_group: '',
      api_version: 'v1',
      resource: 'namespaces',
      subresource: null,
    };
    assert.deepEqual(info('GET', '/api/v1/namespaces/kube-system'), {
      ...expected,
      namespace: 'kube-system',
      name: 'kube-system',
    });
    assert.deepEqual(info('PUT', '/api/v1/namespaces/old/finalize'), {
      ...expected,
      verb: 'update',
      namespace: 'old',
      name: 'old',
      subresource: 'finalize',
    });
    assert.deepEqual(info('GET', '/api/v1/namespaces'), {
      ...expected,
      verb: 'list',
      namespace: null,
      name: null,
    });
  });

  it('reads cluster-scoped resources without a namespace', () => {
    assert.deepEqual(info('DELETE', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/admin'), {
      verb: 'delete',
      api_group: 'rbac.authorization.k8s.io',
      api_version: 'v1',
      resource: 'clusterrolebindings',
      subresource: null,
      namespace: null,
      name: 'admin',
    });
    assert.equal(info('GET', '/api/v1/nodes').verb, 'list');
  });

  it('takes the name from a metadata.name field selector on a list', () => {
    const facts = info('GET', '/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb-0');
    assert.deepEqual(facts, pod('list', 'web-0'));
  });

  it('decodes percent-encoding and ignores the query when reading the path', () => {
    const facts = analyzeKubernetesRequest(
      'GET',
      'https://k8s.example:6443/api/v1/namespaces/d%65fault/pods/web-0?x=1',
    );
    assert.equal(facts.path, '/api/v1/namespaces/default/pods/web-0');
    assert.equal(facts.namespace, 'default');
    assert.equal(facts.verb, 'get');
  });

  it('reports non-resource URLs with the lowercase method as verb', () => {
    for (const [method, url] of [
      ['GET', '/healthz'],
      ['GET', '/version?timeout=32s'],
      ['GET', '/openapi/v2'],
      ['GET', '/apis'],
      ['GET', '/api/v1'],
      ['GET', '/apis/apps/v1'],
      ['POST', '/logs/x'],
    ] as const) {
      const facts = analyzeKubernetesRequest(method, url);
      assert.equal(facts.is_resource_request, false, url);
      assert.equal(facts.verb, method.toLowerCase());
      assert.equal(facts.resource, '');
    }
  });
});
