#!/usr/bin/env node
// Compile several Tolk entry files in one Node process (the WASM compiler loads once).
// Input (stdin): {"root": "<dir>", "entries": ["contracts/root.tolk", ...]}
// Output (stdout): {"<entry>": {"status": "ok", "codeBoc64", "codeHashHex", "fiftCode",
//                   "sources": [{"filename", "sha256"}]} | {"status": "error", "message"}}
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { runTolkCompiler, getTolkCompilerVersion } = require('@ton/tolk-js');

async function main() {
    const req = JSON.parse(fs.readFileSync(0, 'utf-8'));
    const out = { tolkVersion: await getTolkCompilerVersion(), results: {} };
    for (const entry of req.entries) {
        const res = await runTolkCompiler({
            entrypointFileName: entry,
            fsReadCallback: (p) => fs.readFileSync(path.join(req.root, p), 'utf-8'),
        });
        if (res.status !== 'ok') {
            out.results[entry] = { status: 'error', message: res.message };
            continue;
        }
        out.results[entry] = {
            status: 'ok',
            codeBoc64: res.codeBoc64,
            codeHashHex: res.codeHashHex,
            fiftCode: res.fiftCode,
            sources: res.sourcesSnapshot
                .filter((s) => !s.filename.startsWith('@stdlib'))
                .map((s) => ({
                    filename: s.filename,
                    sha256: crypto.createHash('sha256').update(s.contents).digest('hex'),
                })),
        };
    }
    process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
    process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
    process.exit(2);
});
