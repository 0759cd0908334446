import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeHttp } from './http.js';

describe('http analyzer', () => {
  it('uppercases the method and keeps a plain path as is', () => {
    assert.deepEqual(analyzeHttp('get', '/api/users'), {
      protocol_kind: 'http',
      method: 'GET',
      path: '/api/users',
      query: {},
    });
  });

  it('removes dot segments so /a/../admin is /admin', () => {
    assert.equal(analyzeHttp('GET', '/a/../admin').path, '/admin');
    assert.equal(analyzeHttp('GET', '/a/./b/../../admin/').path, '/admin/');
    assert.equal(analyzeHttp('GET', '/../../etc/passwd').path, '/etc/passwd');
  });

  it('keeps a trailing slash after a final dot segment', () => {
    assert.equal(analyzeHttp('GET', '/a/b/..').path, '/a/');
    assert.equal(analyzeHttp('GET', '/a/.').path, '/a/');
  });

  it('collapses duplicate slashes', () => {
    assert.equal(analyzeHttp('GET', '//admin///users').path, '/admin/users');
  });

  it('decodes percent-escaped unreserved characters before removing dot segments', () => {
    assert.equal(analyzeHttp('GET', '/%61dmin').path, '/admin');
    assert.equal(analyzeHttp('GET', '/public/%2e%2e/admin').path, '/admin');
    assert.equal(analyzeHttp('GET', '/x/%2E%2E/%7Euser').path, '/~user');
  });

  it('keeps reserved escapes encoded with uppercase hex', () => {
    assert.equal(analyzeHttp('GET', '/files/a%2fb').path, '/files/a%2Fb');
    assert.equal(analyzeHttp('GET', '/q/a%20b').path, '/q/a%20b');
  });

  it('reads the query as a multi-map with decoded values', () => {
    assert.deepEqual(analyzeHttp('GET', '/s?tag=a&tag=b&q=hello%20world&empty=').query, {
      tag: ['a', 'b'],
      q: ['hello world'],
      empty: [''],
    });
  });

  it('accepts absolute-form targets and drops the fragment', () => {
    const facts = analyzeHttp('post', 'https://api.example.com:8443//v1/../v2/items?id=7#frag');
    assert.equal(facts.method, 'POST');
    assert.equal(facts.path, '/v2/items');
    assert.deepEqual(facts.query, { id: ['7'] });
  });

  it('turns an empty path into /', () => {
    assert.equal(analyzeHttp('GET', '').path, '/');
    assert.equal(analyzeHttp('GET', '?a=1').path, '/');
    assert.equal(analyzeHttp('GET', 'http://example.com').path, '/');
  });

  it('tolerates malformed escapes in path and query', () => {
    const facts = analyzeHttp('DELETE', '/bad%zz/x?k=%E0%A4%A');
    assert.equal(facts.path, '/bad%zz/x');
    assert.equal(facts.query.k?.length, 1);
  });
});
