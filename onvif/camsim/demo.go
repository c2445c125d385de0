package camsim

import (
	_ "embed"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed demo.yaml
var demoYAML string

// DemoYAML returns the embedded demo configuration text.
func DemoYAML() string { return demoYAML }

// DemoConfig returns the embedded three-camera demo configuration.
func DemoConfig() (Config, error) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(demoYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("camsim: demo config: %w", err)
	}
	return c, c.Validate()
}
