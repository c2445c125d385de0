package config

import (
	"strings"
	"testing"

	"velo/internal/camid"
	"velo/internal/testkit"
)

// G-3.4: a camera ID is used as it is in file names, topics and URLs, so
// the config refuses one that any of them would alter (two cameras ending
// in the same files, segments losing their camera), naming the field and
// the rule; IDs with dots, like ingresso.1, are accepted as they are.
func TestG34_CameraIDOneRule(t *testing.T) {
	for _, id := range []string{"gate.x", "ingresso.1", "gate_x", "Cam-2"} {
		p := testkit.WriteSite(t, strings.Replace(testkit.SiteYAML, "id: cam2", "id: "+id, 1))
		if _, err := Load(p); err != nil {
			t.Errorf("%q refused: %v", id, err)
		}
	}
	for _, id := range []string{`"a%Y"`, `".hidden"`, `"caméra"`, `"a:b"`, `"a@b"`, `"gate\\x"`, `"-x"`, `"a?b"`, strings.Repeat("a", 65)} {
		p := testkit.WriteSite(t, strings.Replace(testkit.SiteYAML, "id: cam2", "id: "+id, 1))
		_, err := Load(p)
		if err == nil {
			t.Errorf("%s accepted", id)
			continue
		}
		for _, want := range []string{p + ":31:", "cameras[1].id:", camid.Rule} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", id, err, want)
			}
		}
	}
}
