#!/usr/bin/env node
// A native-solc-compatible front for the official WebAssembly compiler (npm `solc`).
//
// py-solc-x, Ape and ezkl call a native `solc`: they ask `--version` and speak
// `--standard-json` on stdin/stdout. Raw `solcjs --standard-json` prints a warning line into
// its JSON, so this front loads the same compiler as a library and answers exactly like
// native solc. The compiler module comes from ZKML_SOLCJS (an absolute path to
// node_modules/solc), set by the wrapper script that zkml-oracle writes.
"use strict";
const fs = require("fs");
const path = require("path");

const solcPath = process.env.ZKML_SOLCJS;
if (!solcPath) {
  process.stderr.write("zkml-oracle solc front: ZKML_SOLCJS is not set; run `zkml-oracle doctor`.\n");
  process.exit(2);
}
const solc = require(solcPath);

function parseArgs(argv) {
  const opts = { standardJson: false, version: false, basePath: null, includePaths: [], allowPaths: [], files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const eq = a.indexOf("=");
      if (eq >= 0) return a.slice(eq + 1);
      i += 1;
      return argv[i];
    };
    if (a === "--version") opts.version = true;
    else if (a === "--standard-json") opts.standardJson = true;
    else if (a.startsWith("--base-path")) opts.basePath = value();
    else if (a.startsWith("--include-path")) opts.includePaths.push(value());
    else if (a.startsWith("--allow-paths")) opts.allowPaths.push(...value().split(","));
    else if (a.startsWith("-")) { /* flags native solc accepts but that change nothing here */ }
    else opts.files.push(a);
  }
  return opts;
}

function importResolver(opts) {
  const roots = [opts.basePath || process.cwd(), ...opts.includePaths];
  return (importPath) => {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.resolve(root, importPath));
    for (const candidate of candidates) {
      try {
        return { contents: fs.readFileSync(candidate, "utf8") };
      } catch (_) { /* try the next root */ }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(", ")})` };
  };
}

function readInput(opts) {
  // Native solc reads the standard JSON from stdin, or from a file given as argument.
  if (opts.files.length > 0) return fs.readFileSync(opts.files[0], "utf8");
  return fs.readFileSync(0, "utf8");
}

const opts = parseArgs(process.argv.slice(2));
if (opts.version) {
  const v = solc.version();
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${v}\n`);
} else if (opts.standardJson) {
  const output = solc.compile(readInput(opts), { import: importResolver(opts) });
  // No process.exit() here: stdout to a pipe is written asynchronously, and exiting early
  // truncates the JSON at 64 KiB.
  process.stdout.write(output);
  process.exitCode = 0;
} else {
  process.stderr.write(
    "zkml-oracle solc front: only `--version` and `--standard-json` are supported " +
      "(this is the WebAssembly compiler behind a native-compatible front).\n",
  );
  process.exitCode = 1;
}
