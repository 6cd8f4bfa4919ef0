#!/usr/bin/env node
// The @ton/sandbox half of benchmarks/claim_crosscheck.py: loads the accounts exported
// from our Python sandbox just before a reward claim, sends the very same external
// message, and prints what each transaction of the trace did, as JSON on stdout.
// stdin: {"config": b64 BOC, "now": int, "lt": str, "rand_seed": hex,
//         "accounts": {raw address: b64 ShardAccount BOC}, "message": b64 BOC}
'use strict';
const fs = require('fs');
const { Blockchain } = require('@ton/sandbox');
const { defaultConfig } = require('@ton/sandbox/dist/config/defaultConfig');
const { Address, Cell, beginCell, loadShardAccount, storeShardAccount } = require('@ton/core');

function shardAccountCell(shardAccount) {
    return beginCell().store(storeShardAccount(shardAccount)).endCell();
}

async function main() {
    const req = JSON.parse(fs.readFileSync(0, 'utf-8'));
    const config = Cell.fromBase64(req.config);
    const bc = await Blockchain.create({ config });
    bc.now = req.now;
    bc.random = Buffer.from(req.rand_seed, 'hex');
    // Logical time has no setter; a snapshot round trip is the public way to set it.
    await bc.loadFrom({ ...bc.snapshot(), lt: BigInt(req.lt) });

    // setShardAccount re-serializes the parsed ShardAccount with @ton/core: check that
    // every account comes out bit-identical to what Python exported.
    const loaded = {};
    for (const [raw, boc] of Object.entries(req.accounts)) {
        const cell = Cell.fromBase64(boc);
        const addr = Address.parseRaw(raw);
        await bc.setShardAccount(addr, loadShardAccount(cell.beginParse()));
        const back = shardAccountCell((await bc.getContract(addr)).account);
        loaded[raw] = back.hash().equals(cell.hash());
    }

    const t0 = process.hrtime.bigint();
    const res = await bc.sendMessage(Cell.fromBase64(req.message));
    const claimMs = Number(process.hrtime.bigint() - t0) / 1e6;

    const transactions = res.transactions.map((tx) => {
        const d = tx.description;
        const vm = d.type === 'generic' && d.computePhase.type === 'vm' ? d.computePhase : null;
        return {
            account: new Address(0, Buffer.from(tx.address.toString(16).padStart(64, '0'), 'hex')).toRawString(),
            lt: tx.lt.toString(),
            exit: vm ? vm.exitCode : null,
            gas: vm ? Number(vm.gasUsed) : 0,
            fees: tx.totalFees.coins.toString(),
            state: tx.stateUpdate.newHash.toString('hex'),
            hash: tx.hash().toString('hex'),
            boc: tx.raw.toBoc().toString('base64'),
            in_msg: tx.raw.refs[0].bits.at(0) ? tx.raw.refs[0].refs[0].hash().toString('hex') : null,
        };
    });
    const final = {};
    for (const raw of new Set([...Object.keys(req.accounts), ...transactions.map((t) => t.account)])) {
        const contract = await bc.getContract(Address.parseRaw(raw));
        final[raw] = shardAccountCell(contract.account).refs[0].hash().toString('hex');
    }
    process.stdout.write(JSON.stringify({
        config_is_default: Cell.fromBase64(defaultConfig).hash().equals(config.hash()),
        loaded_exact: loaded,
        claim_ms: claimMs,
        transactions,
        final,
    }));
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
