'use strict';
// Post-processes the Python requirements that serverless-python-requirements installed,
// before it injects them into the zip (a local plugin, listed after it in serverless.yml):
//
// 0. Works on a copy. With useStaticCache, .serverless/requirements is a symlink into the
//    plugin's cache (~/.cache/serverless-python-requirements/<sha256 of requirements.txt>),
//    shared by every checkout and reused as is whatever slimPatterns say now: trimming it in
//    place would change other builds. The copy is trimmed, the cache stays as pip left it.
// 1. Strips debug symbols from the compiled extensions, safely. The requirements plugin's own
//    `strip` runs on every *.so, including the libraries auditwheel vendors into
//    `<package>.libs/` (numpy.libs/libscipy_openblas64_*.so), and corrupts them ("ELF load
//    command address/offset not page-aligned": numpy, hence onnxruntime, no longer import).
//    So its strip is off and this one leaves `*.libs/` alone. Unstripped, spaCy alone is ~120 MB.
// 2. Runs optimize_requirements.py with the Lambda's Python: deletes custom.optimizeRequirements.exclude
//    (what the handler never loads), checks that the handler still answers from the trimmed
//    requirements alone (else the build fails), and precompiles exactly the modules it imported,
//    with `--invalidation-mode unchecked-hash`. Lambda's /var/task is read-only, so without .pyc
//    every cold start recompiles spaCy & co (measured: ~3.2 s cold start instead of ~1.4 s);
//    pip's own .pyc are timestamp-checked and the zip resets the timestamps, so they would be
//    stale: the slim step deletes them, this recreates them for the modules that are needed.
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

class OptimizeRequirements {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.log = log;
    this.hooks = {
      // after serverless-python-requirements' install (its `before:` hook), before it injects
      // the requirements into the zip (its `after:` hook)
      'package:createDeploymentArtifacts': () => this.optimize(),
    };
  }

  say(level, message) {
    if (this.log) this.log[level](`optimize-requirements: ${message}`);
    else console.log(`optimize-requirements: ${message}`);
  }

  async optimize() {
    const folder = path.join(this.serverless.serviceDir || this.serverless.config.servicePath,
      '.serverless', 'requirements');
    // the requirements plugin creates this symlink without waiting for it: give it a moment
    for (let i = 0; i < 100 && !fs.existsSync(folder); i++) await new Promise((done) => setTimeout(done, 100));
    if (!fs.existsSync(folder)) {
      this.say('warning', `${folder} not found, nothing done`);
      return;
    }
    if (fs.lstatSync(folder).isSymbolicLink()) {
      const cache = fs.realpathSync(folder);
      fs.unlinkSync(folder);
      execFileSync('cp', ['-a', cache + '/.', folder], { stdio: 'pipe' });
      this.say('info', `copied the requirements out of the static cache ${cache}`);
    }
    try {
      execFileSync('find', [folder + '/', '-name', '*.so', '-not', '-path', '*.libs/*',
        '-exec', 'strip', '--strip-unneeded', '{}', ';'], { stdio: 'pipe' });
      this.say('info', 'stripped the extension modules');
    } catch (err) {
      this.say('warning', `could not strip (${err.message.split('\n')[0]}); is binutils installed?`);
    }
    const custom = (this.serverless.service.custom || {}).pythonRequirements || {};
    const python = custom.pythonBin || this.serverless.service.provider.runtime.replace(/^python/, 'python');
    const exclude = ((this.serverless.service.custom || {}).optimizeRequirements || {}).exclude || [];
    const serviceDir = this.serverless.serviceDir || this.serverless.config.servicePath;
    try {
      const out = execFileSync(python, [path.join(__dirname, 'optimize_requirements.py'), folder, serviceDir,
        ...exclude.map((pattern) => `--exclude=${pattern}`)], { stdio: 'pipe', encoding: 'utf8' });
      this.say('info', `${out.trim()} (${python})`);
    } catch (err) {
      const detail = `${err.stdout || ''}${err.stderr || err.message}`.trim().split('\n').slice(-15).join('\n');
      throw new this.serverless.classes.Error(`optimize-requirements failed:\n${detail}`);
    }
  }
}

module.exports = OptimizeRequirements;
