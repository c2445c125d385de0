package onvif_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	usedevice "github.com/use-go/onvif/device"
	useptz "github.com/use-go/onvif/ptz"
)

// These tests record why onvif/ does not use github.com/use-go/onvif v0.0.9
// for these calls: decoded with its own response types, the captured replies
// lose data. If a future version fixes this, these tests fail and the choice
// should be revisited (docs/onvif.md).

// bodyChild returns the decoder positioned at the Body's first child.
func decodeBodyChild(t *testing.T, data []byte, out any) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	inBody := false
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Local == "Body" {
			inBody = true
			continue
		}
		if inBody {
			if err := dec.DecodeElement(out, &se); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}

func TestUseGoOnvifLosesPresetsAndServices(t *testing.T) {
	var presets useptz.GetPresetsResponse
	decodeBodyChild(t, renderFixture(t, "ptz.GetPresets.xml", ""), &presets)
	// One struct field, not a slice: only the last of 46 presets survives.
	if string(presets.Preset.Token) != "Home2" { // the 46th, last preset of the capture
		t.Fatalf("use-go decoded preset %q", presets.Preset.Token)
	}
	var svcs usedevice.GetServicesResponse
	decodeBodyChild(t, renderFixture(t, "GetServices.xml", ""), &svcs)
	if svcs.Service.Namespace == "" {
		t.Fatal("use-go decoded no service at all")
	}
	// Our client returns all of them (TestCapturedPresets, TestCapturedDevice).
}

func TestUseGoOnvifGotoPresetSendsSpeed(t *testing.T) {
	out, err := xml.Marshal(useptz.GotoPreset{ProfileToken: "main", PresetToken: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "Speed") {
		t.Fatalf("use-go GotoPreset without Speed: %s", out)
	}
	// The simulator refuses that Speed (TestGotoPresetSendsNoSpeed).
}
