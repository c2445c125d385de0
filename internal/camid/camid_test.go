package camid

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, id := range []string{"cam1", "gate.x", "gate_x", "ingresso.1", "ptz-entrance", "A", strings.Repeat("a", MaxLen)} {
		if err := Check(id); err != nil {
			t.Errorf("%q refused: %v", id, err)
		}
	}
	for _, id := range []string{"", ".hidden", "..", "-x", "_x", "gate x", "gate/x", "a+b", "a#b", "a%Y", "caméra", "a:b", "a@b", "a\x00b", strings.Repeat("a", MaxLen+1)} {
		err := Check(id)
		if err == nil || !strings.Contains(err.Error(), Rule) {
			t.Errorf("%q: %v", id, err)
		}
	}
}
