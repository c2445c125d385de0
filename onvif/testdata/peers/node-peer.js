// Drives the independent npm ONVIF client (onvif@0.8.3, agsh/onvif) for
// Velo's interoperability tests. Prints one JSON object on stdout.
//   node node-peer.js discover TIMEOUT_MS
//   node node-peer.js cam HOST PORT USER PASS
'use strict';
const onvif = require('onvif');
const [mode, ...args] = process.argv.slice(2);

function done(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
  process.exit(0);
}
function fail(stage, err) {
  process.stdout.write(JSON.stringify({ error: stage + ': ' + (err && err.message || String(err)) }) + '\n');
  process.exit(1);
}

if (mode === 'discover') {
  onvif.Discovery.probe({ timeout: Number(args[0] || 2000), resolve: false }, (err, results) => {
    if (err && (!results || results.length === 0)) return fail('probe', err);
    const found = results.map(r => {
      const m = r.probeMatches.probeMatch;
      return { endpoint: m.endpointReference.address, xaddrs: String(m.XAddrs).split(' ') };
    });
    done({ cameras: found });
  });
} else if (mode === 'cam') {
  const [hostname, port, username, password] = args;
  new onvif.Cam({ hostname, port: Number(port), username, password, timeout: 10000 }, function (err) {
    if (err) return fail('connect', err);
    const cam = this;
    cam.getPresets({}, (err, byName) => {
      if (err) return fail('getPresets', err);
      cam.getStatus({}, (err, status) => {
        if (err) return fail('getStatus', err);
        cam.getConfigurationOptions(cam.defaultProfile.PTZConfiguration.$.token, (err, opts) => {
          if (err) return fail('getConfigurationOptions', err);
          done({
            presetTokens: Object.keys(cam.presets),
            presetNames: Object.keys(byName),
            status,
            hasSpaces: !!(opts && opts.spaces),
            profiles: cam.profiles.map(p => p.$.token),
          });
        });
      });
    });
  });
} else {
  fail('usage', 'mode must be discover or cam');
}
