import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runProgram } from '../testing/run.js';
import { CLI } from '../testing/warden-process.js';

describe('warden demo (what npm start runs)', () => {
  let dir: string;
  let child: ChildProcess;
  let output = '';
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-demo-'));
    child = spawn(process.execPath, [
      CLI,
      'demo',
      '--port',
      '0',
      '--api-port',
      '0',
      '--data-dir',
      join(dir, 'data'),
    ]);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start:\n${output}`)), 60_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        if (output.includes('-- blocked by rule "no-drop"')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => reject(new Error(`demo exited with ${code}:\n${output}`)));
    });
    await ready;
    port = Number(/PostgreSQL listening on 127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
  });
  after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the psql command that works, shows masked personal data and blocks a DROP', async () => {
    const key = readFileSync(join(dir, 'data', 'admin.key'), 'utf8').trim();
    assert.match(
      output,
      new RegExp(`psql "host=127\\.0\\.0\\.1 port=${port} dbname=demo user=me sslmode=disable"`),
    );
    const res = await runProgram(
      'psql',
      [
        `host=127.0.0.1 port=${port} dbname=demo user=me sslmode=disable`,
        '-XAt',
        '-c',
        "select email, card_number from customers where name = 'Ada Lovelace'",
        '-c',
        'drop table orders',
        '-c',
        'select count(*) from orders',
      ],
      { PGPASSWORD: key },
    );
    assert.equal(res.stdout, '***********.com|**** **** **** 1111\n3\n');
    assert.match(res.stderr, /ERROR: {2}Dropping or truncating tables needs a change request\. \(warden\)/);
  });

  it('holds an unbounded DELETE until the demo approver (dba.key) approves it', async () => {
    const key = readFileSync(join(dir, 'data', 'admin.key'), 'utf8').trim();
    const dba = readFileSync(join(dir, 'data', 'dba.key'), 'utf8').trim();
    const url = /WARDEN_URL=(\S+) WARDEN_TOKEN=/.exec(output)?.[1];
    assert.ok(url, output);
    const env = { WARDEN_URL: url, WARDEN_TOKEN: dba };
    const held = runProgram(
      'psql',
      [`host=127.0.0.1 port=${port} dbname=demo user=me sslmode=disable`, '-XAt', '-c', 'delete from orders'],
      { PGPASSWORD: key },
      { timeoutMs: 60_000 },
    );
    let id: string | undefined;
    for (let i = 0; i < 200 && !id; i++) {
      const ls = await runProgram(process.execPath, [CLI, 'reviews', 'ls', '--pending', '--json'], env);
      assert.equal(ls.code, 0, ls.stderr);
      id = (JSON.parse(ls.stdout) as Array<{ id: string }>)[0]?.id;
      if (!id) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(id, 'the held DELETE is listed for the approver');
    const approved = await runProgram(process.execPath, [CLI, 'reviews', 'approve', id], env);
    assert.equal(approved.code, 0, approved.stderr);
    const done = await held;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout, 'DELETE 3\n');
  });

  it('stops cleanly on SIGTERM, its PostgreSQL with it', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
