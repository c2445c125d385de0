package testkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// SiteYAML is a valid site config for tests: one PTZ camera (cam1, preset
// "1", recording to REC) and one fixed camera (cam2), operator "ops"
// (live-viewer on cam1). WriteSite writes it with its
// secret files; tests derive variants with strings.Replace.
const SiteYAML = `site:
  id: test-site
  name: Test site
  controller: Test S.r.l.
  purposes: [asset protection]
gateway: gw-1
outputs:
  rtsp_listen: 127.0.0.1:18654
  record_dir: REC
operators:
  - name: ops
    password_file: ops.pw
    roles: [live-viewer]
    cameras: [cam1]
cameras:
  - id: cam1
    purpose: entrance
    match: {serial: S1}
    xaddr: http://127.0.0.1:8080/onvif/device_service
    username: u
    password_file: cam.pw
    record: {enabled: true, segment: 30s}
    presets:
      - token: "1"
        position: {pan: 0.1, tilt: 0, zoom: 0.2}
        tolerance: 0.02
        approval: {by: A. Bianchi, date: 2026-10-01, document: DOC-1}
        masks:
          - name: badge
            polygon: [{x: 0.1, y: 0.1}, {x: 0.3, y: 0.1}, {x: 0.3, y: 0.3}]
  - id: cam2
    purpose: yard
    match: {mac: "02:00:00:00:00:02"}
    xaddr: http://127.0.0.2:8080/onvif/device_service
    masks:
      - name: street
        style: blur
        polygon: [{x: 0, y: 0.5}, {x: 1, y: 0.5}, {x: 1, y: 1}, {x: 0, y: 1}]
    approval: {by: A. Bianchi, date: 2026-10-02, document: DOC-2}
`

// Passwords written by WriteSite beside the config.
const (
	OperatorPassword = "op-secret"
	CameraPassword   = "cam-secret"
)

// WriteSite writes a site config (text, with REC replaced by a record
// folder) into a new temporary folder, with ops.pw and cam.pw (mode 0600),
// and returns the config's path.
func WriteSite(t testing.TB, text string) string {
	t.Helper()
	dir := t.TempDir()
	SecretFile(t, dir, "ops.pw", OperatorPassword+"\n")
	SecretFile(t, dir, "cam.pw", CameraPassword+"\n")
	text = strings.ReplaceAll(text, "REC", filepath.Join(dir, "rec"))
	p := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
