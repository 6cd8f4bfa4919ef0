#!/usr/bin/env node
// The @ton/sandbox half of benchmarks/sandbox_throughput.py: the same flow on the
// reference sandbox, timed in this process, with per-transaction facts to compare.
// stdin: {"code": b64 BOC, "data": b64 BOC, "now": int, "messages": int, "gets": int, "value": str}
'use strict';
const fs = require('fs');
const { Blockchain } = require('@ton/sandbox');
const { Cell, beginCell, contractAddress, storeShardAccount } = require('@ton/core');

// Hash of the Account cell referenced by the ShardAccount (tag bit included), as on chain.
function accountHash(shardAccount) {
    return beginCell().store(storeShardAccount(shardAccount)).endCell().refs[0].hash().toString('hex');
}

async function main() {
    const req = JSON.parse(fs.readFileSync(0, 'utf-8'));
    const code = Cell.fromBase64(req.code);
    const data = Cell.fromBase64(req.data);
    const init = { code, data };
    const addr = contractAddress(0, init);
    const value = BigInt(req.value);

    const body = (i) => beginCell().storeUint(0x7e8764ef, 32).storeUint(i, 64).storeUint(1, 32).endCell();

    // One pass of the flow; `records` (per-transaction facts) only in the untimed pass.
    async function pass(records) {
        const t0 = process.hrtime.bigint();
        const bc = await Blockchain.create();
        bc.now = req.now;
        const treasury = await bc.treasury('bench');
        const record = async (res) => {
            if (!records) return;
            for (const tx of res.transactions) {
                if (tx.inMessage?.info.dest?.equals?.(addr)) {
                    const d = tx.description;
                    const contract = await bc.getContract(addr);
                    records.push({
                        exit: d.computePhase.type === 'vm' ? d.computePhase.exitCode : null,
                        gas: d.computePhase.type === 'vm' ? Number(d.computePhase.gasUsed) : 0,
                        fees: tx.totalFees.coins.toString(),
                        state: accountHash(contract.account),
                    });
                }
            }
        };
        const tDeploy = process.hrtime.bigint();
        await record(await treasury.send({ to: addr, value, init, body: body(0) }));
        const tMsgs = process.hrtime.bigint();
        for (let i = 1; i <= req.messages; i++) {
            await record(await treasury.send({ to: addr, value, body: body(i) }));
        }
        const tGets = process.hrtime.bigint();
        let last = 0n;
        for (let i = 0; i < req.gets; i++) {
            const r = await bc.runGetMethod(addr, 'add_to_counter', [{ type: 'int', value: BigInt(i) }]);
            last = r.stackReader.readBigNumber();
        }
        const tEnd = process.hrtime.bigint();
        const s = (a, b) => Number(b - a) / 1e9;
        return { setup_s: s(t0, tDeploy), deploy_s: s(tDeploy, tMsgs), messages_s: s(tMsgs, tGets),
                 gets_s: s(tGets, tEnd), last_get: last.toString() };
    }

    // Best of `repeat` timed passes: the least disturbed run on a shared machine.
    // The first pass is also reported alone: a cold process, as a test run sees it.
    let timed = null;
    let first = null;
    for (let i = 0; i < (req.repeat || 1); i++) {
        const t = await pass(null);
        if (!timed) { timed = { ...t }; first = t; continue; }
        for (const k of ['setup_s', 'deploy_s', 'messages_s', 'gets_s']) timed[k] = Math.min(timed[k], t[k]);
    }
    timed.first = first;
    const records = [];
    await pass(records);
    process.stdout.write(JSON.stringify({ ...timed, records }));
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
