package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// docSchema is the part of a docs/schemas JSON schema the payload check
// uses: required keys, the declared properties and their enums.
type docSchema struct {
	Required   []string                   `json:"required"`
	Properties map[string]json.RawMessage `json:"properties"`
	AllOf      []struct {
		Ref string `json:"$ref"`
	} `json:"allOf"`
}

func loadSchema(t *testing.T, name string) docSchema {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "schemas", name))
	if err != nil {
		t.Fatal(err)
	}
	var s docSchema
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, r := range s.AllOf {
		base := loadSchema(t, r.Ref)
		s.Required = append(s.Required, base.Required...)
		for k, v := range base.Properties {
			s.Properties[k] = v
		}
	}
	return s
}

// checkPayload reports how payload departs from the documented schema:
// a missing required key, an undocumented key, a value outside an enum.
func checkPayload(s docSchema, payload []byte) error {
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		return err
	}
	var errs []string
	for _, k := range s.Required {
		if _, ok := m[k]; !ok {
			errs = append(errs, "missing "+k)
		}
	}
	for k, v := range m {
		raw, ok := s.Properties[k]
		if !ok {
			errs = append(errs, "undocumented "+k)
			continue
		}
		var p struct {
			Enum []any `json:"enum"`
		}
		_ = json.Unmarshal(raw, &p)
		if len(p.Enum) > 0 && !slices.Contains(p.Enum, v) {
			errs = append(errs, fmt.Sprintf("%s=%v not in %v", k, v, p.Enum))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// schemaFor picks the documented schema of a topic under root.
func schemaFor(root, topic string) string {
	switch {
	case topic == root+"status":
		return "status.schema.json"
	case strings.HasPrefix(topic, root+"cameras/") && strings.HasSuffix(topic, "/state"):
		return "state.schema.json"
	case topic == root+"events":
		return "event.schema.json"
	case topic == root+"stats":
		return "stats.schema.json"
	case strings.HasSuffix(topic, "/reply"):
		return "reply.schema.json"
	case strings.HasPrefix(topic, root+"cmd/"):
		return "command.schema.json"
	}
	return ""
}

// The checker itself fails on what it must catch.
func TestSchemaCheckerCatches(t *testing.T) {
	s := loadSchema(t, "event.schema.json")
	good := `{"seq":1,"time":"x","site":"s","gateway":"g","kind":"drift","event_time":"x"}`
	if err := checkPayload(s, []byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		`{"seq":1,"time":"x","site":"s","gateway":"g","kind":"drift"}`,
		`{"seq":1,"time":"x","site":"s","gateway":"g","kind":"party","event_time":"x"}`,
		`{"seq":1,"time":"x","site":"s","gateway":"g","kind":"drift","event_time":"x","password":"p"}`,
	} {
		if checkPayload(s, []byte(bad)) == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
