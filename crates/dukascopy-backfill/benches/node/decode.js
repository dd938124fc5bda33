// dukascopy-node on the fixture hours of benches/decode.rs, ticks per second on one core.
//
//   cd crates/dukascopy-backfill/benches/node && npm install && node decode.js
//
// Not wired into CI. dukascopy-node 1.46.4 (installed as `dukascopy-node-bi5`) is the last
// release with a .bi5 decoder: `processData` runs lzma-purejs, splits the records and normalises
// them into [ms, ask, bid, askVolume, bidVolume] arrays of floats. 1.50.0 has dropped bi5 and
// reads the JSON API: `processData` there is JSON.parse + delta decoding into the same arrays.
// The anchors match the Rust bench: the decompression alone, and JSON.parse alone.
'use strict';

const fs = require('fs');
const path = require('path');

const bi5Lib = require('dukascopy-node-bi5');
const jsonLib = require('dukascopy-node');
const lzmajs = require('lzma-purejs-requirejs');

const FIXTURES =
  process.env.DUKASCOPY_FIXTURES ||
  path.join(__dirname, '../../../../../shared/fixtures/dukascopy');

const cases = [
  {
    group: 'bi5',
    name: 'btcusd_2023_01_20_12h',
    file: 'BTCUSD/2023/01/20/12h_ticks.bi5',
    url: 'https://datafeed.dukascopy.com/datafeed/BTCUSD/2023/01/20/12h_ticks.bi5',
    instrument: 'btcusd',
    ticks: 8523,
  },
  {
    group: 'bi5',
    name: 'eurusd_2019_01_04_13h',
    file: 'EURUSD/2019/01/04/13h_ticks.bi5',
    url: 'https://datafeed.dukascopy.com/datafeed/EURUSD/2019/01/04/13h_ticks.bi5',
    instrument: 'eurusd',
    ticks: 7763,
  },
  {
    group: 'json',
    name: 'eurusd_2026_07_13_12h',
    file: 'jetta_json/ticks-EUR-USD-2026-7-13-12.json',
    url: 'https://jetta.dukascopy.com/v1/ticks/EUR-USD/2026/7/13/12',
    instrument: 'eurusd',
    ticks: 3551,
  },
];

function full(c, buffer) {
  const lib = c.group === 'bi5' ? bi5Lib : jsonLib;
  return lib.processData({
    instrument: c.instrument,
    requestedTimeframe: 'tick',
    bufferObjects: [{ url: c.url, buffer }],
    priceType: 'bid',
    volumes: true,
    volumeUnits: 'units',
    ignoreFlats: false,
  });
}

function anchor(c, buffer) {
  return c.group === 'bi5'
    ? lzmajs.decompressFile(buffer)
    : JSON.parse(buffer.toString('utf8'));
}

// Mean ns per call over ~`seconds` after a warm-up.
function time(fn, seconds) {
  for (let i = 0; i < 20; i++) fn();
  let n = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  while (elapsed < budget) {
    fn();
    n++;
    elapsed = process.hrtime.bigint() - start;
  }
  return Number(elapsed) / n;
}

console.log(`dukascopy-node ${require('dukascopy-node-bi5/package.json').version} (bi5) / ` +
  `${require('dukascopy-node/package.json').version} (json), node ${process.version}`);
for (const c of cases) {
  const buffer = fs.readFileSync(path.join(FIXTURES, c.file));
  const out = full(c, buffer);
  if (out.length !== c.ticks) {
    throw new Error(`${c.name}: ${out.length} ticks, expected ${c.ticks}`);
  }
  const anchorName = c.group === 'bi5' ? 'lzma_decompress_only' : 'json_parse_only';
  const fullNs = time(() => full(c, buffer), 3);
  const anchorNs = time(() => anchor(c, buffer), 3);
  const perSec = (ns) => Math.round((c.ticks / ns) * 1e9);
  console.log(
    `  ${c.group.padEnd(4)} ${c.name.padEnd(22)} processData ${String(perSec(fullNs)).padStart(9)} ticks/s ` +
      `(${(fullNs / 1e3).toFixed(1)} µs)   ${anchorName} ${String(perSec(anchorNs)).padStart(9)} ticks/s ` +
      `(${(anchorNs / 1e3).toFixed(1)} µs)   first ${JSON.stringify(out[0])}`,
  );
}
