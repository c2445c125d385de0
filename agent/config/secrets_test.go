package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// A Secret never shows its value, whatever prints or encodes it.
func TestSecretNeverShows(t *testing.T) {
	const pw = "hunter2-secret"
	s := Secret(pw)
	v := struct {
		P Secret
		Q *Secret
	}{s, &s}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%10s"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, v))
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j), string(y), fmt.Sprint(s), fmt.Sprintln(v))
	for _, o := range outs {
		if strings.Contains(o, pw) || strings.Contains(o, fmt.Sprintf("%x", pw)) {
			t.Errorf("secret shown: %s", o)
		}
	}
	if s.Reveal() != pw {
		t.Error("Reveal lost the value")
	}
}
