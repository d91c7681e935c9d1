'use strict';
// Post-processes the Python requirements that serverless-python-requirements installed,
// before it injects them into the zip (a local plugin, listed after it in serverless.yml):
//
// 1. Strips debug symbols from the compiled extensions, safely. The requirements plugin's own
//    `strip` runs on every *.so, including the libraries auditwheel vendors into
//    `<package>.libs/` (numpy.libs/libscipy_openblas64_*.so), and corrupts them ("ELF load
//    command address/offset not page-aligned": numpy, hence onnxruntime, no longer import).
//    So its strip is off and this one leaves `*.libs/` alone. Unstripped, spaCy alone is ~120 MB.
// 2. Precompiles the Python files with `--invalidation-mode unchecked-hash`. Lambda's /var/task
//    is read-only, so without .pyc every cold start recompiles spaCy & co (measured: ~3.2 s
//    cold start instead of ~1.4 s). pip's own .pyc are timestamp-checked and the zip resets
//    the timestamps, so they would be stale: the slim step deletes them, this recreates them.
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
    try {
      execFileSync('find', [folder + '/', '-name', '*.so', '-not', '-path', '*.libs/*',
        '-exec', 'strip', '--strip-unneeded', '{}', ';'], { stdio: 'pipe' });
      this.say('info', 'stripped the extension modules');
    } catch (err) {
      this.say('warning', `could not strip (${err.message.split('\n')[0]}); is binutils installed?`);
    }
    const custom = (this.serverless.service.custom || {}).pythonRequirements || {};
    const python = custom.pythonBin || this.serverless.service.provider.runtime.replace(/^python/, 'python');
    try {
      execFileSync(python, ['-m', 'compileall', '-q', '-j', '0', '--invalidation-mode', 'unchecked-hash',
        folder + '/'], { stdio: 'pipe' });
      this.say('info', `precompiled the Python files with ${python}`);
    } catch (err) {
      this.say('warning', `could not precompile (${err.message.split('\n')[0]})`);
    }
  }
}

module.exports = OptimizeRequirements;
