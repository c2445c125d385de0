package maskspec

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"

	"velo/internal/safefile"
)

// MaskFile is a YAML file of mask sets for one camera:
//
//	camera: badge-corridor
//	sets:
//	  - preset: ""            # "" for a fixed camera, else the preset token
//	    masks:
//	      - name: badge reader
//	        style: fill       # fill (default) | pixelate | blur | full
//	        polygon: [{x: 0.6, y: 0.1}, {x: 0.8, y: 0.1}, {x: 0.8, y: 0.4}]
type MaskFile struct {
	Camera string    `yaml:"camera"`
	Sets   []MaskSet `yaml:"sets"`
}

// LoadMaskFile reads and validates a mask file; errors name the file.
func LoadMaskFile(path string) (MaskFile, error) {
	var mf MaskFile
	data, err := safefile.ReadFile(path, safefile.MaxConfigBytes) // bounded, never blocks on a FIFO
	if err != nil {
		return mf, fmt.Errorf("masking: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&mf); err != nil {
		return mf, fmt.Errorf("masking: %s: %w", path, err)
	}
	if mf.Camera == "" {
		return mf, fmt.Errorf("masking: %s: camera: required", path)
	}
	if len(mf.Sets) == 0 {
		return mf, fmt.Errorf("masking: %s: sets: at least one mask set is required", path)
	}
	for i := range mf.Sets {
		mf.Sets[i].Camera = mf.Camera
		if err := mf.Sets[i].Validate(); err != nil {
			return mf, fmt.Errorf("masking: %s: sets[%d]: %w", path, i, err)
		}
	}
	return mf, nil
}
