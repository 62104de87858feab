#!/usr/bin/env node
// `npm run demo`: the kiosk compositor demo. Not written yet: it arrives with the kiosk issue.
console.error('primebuf demo: the kiosk compositor (compositor-example/) is not written yet; see the README.');
process.exit(1);
