package config

import (
	"strings"
	"testing"

	"velo/internal/testkit"
)

const camApproval = "    approval: {by: A. Bianchi, date: 2026-10-02, document: DOC-2}\n"

// dynamicSite is the test site with a dynamic section on the fixed cam2.
func dynamicSite(section string) string {
	return strings.Replace(testkit.SiteYAML, camApproval, camApproval+"    dynamic: {"+section+"}\n", 1)
}

const goodDynamic = `purpose: tourist-webcam, detectors: [motion, hog], dynamic_zone: [{x: 0, y: 0.2}, {x: 1, y: 0.2}, {x: 1, y: 1}, {x: 0, y: 1}]`

// ptzDynamic is a dynamic section for a PTZ camera (zones per preset).
const ptzDynamic = `purpose: traffic, detectors: [motion]`

// presetZone is a preset's dynamic_zone line.
const presetZone = "        dynamic_zone: [{x: 0.6, y: 0.3}, {x: 1, y: 0.3}, {x: 1, y: 1}, {x: 0.6, y: 1}]\n"

// ptzDynamicSite is the test site with a dynamic section on the PTZ cam1
// and zone (a presetZone line, or "") on its preset.
func ptzDynamicSite(section, zone string) string {
	s := strings.Replace(testkit.SiteYAML, "    presets:\n", "    dynamic: {"+section+"}\n    presets:\n", 1)
	return strings.Replace(s, "        tolerance: 0.02\n", "        tolerance: 0.02\n"+zone, 1)
}

// TestG45_G53_G321_DynamicConfig: dynamic masking is refused without its
// purpose (G-4.5, G-5.3), with a face detector and no prior check
// (G-3.2.1), on a PTZ camera without a zone on each preset (or with one
// for all views), and with any setting the stage refuses; each error
// names file, line, field and reason.
func TestG45_G53_G321_DynamicConfig(t *testing.T) {
	c, err := Load(testkit.WriteSite(t, dynamicSite(goodDynamic)))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Cameras[1].Dynamic; d == nil || d.Purpose != DynamicTourist || len(d.Zone) != 4 {
		t.Fatalf("dynamic section not read: %+v", d)
	}
	if _, err := Load(testkit.WriteSite(t, dynamicSite(goodDynamic+", prior_check_ref: GPDP-2026-17")+"")); err != nil {
		t.Fatal(err)
	}
	ptz, err := Load(testkit.WriteSite(t, ptzDynamicSite(ptzDynamic, presetZone)))
	if err != nil {
		t.Fatal(err)
	}
	cam := &ptz.Cameras[0]
	if sp := cam.Dynamic.Spec(cam); len(sp.Zone) != 0 || len(sp.Zones["1"]) != 4 || sp.Zones["1"][0].X != 0.6 {
		t.Fatalf("PTZ camera: the stage's zones %+v (zone %v), want preset 1's", sp.Zones, sp.Zone)
	}
	if still := cam.StillMaskSets(); len(still) != 1 || still[0].Masks[len(still[0].Masks)-1].Polygon[0].X != 0.6 {
		t.Errorf("PTZ camera: the still of preset 1 does not mask its dynamic_zone: %+v", still)
	}
	cases := []struct{ name, site, field, reason string }{
		{"no purpose", dynamicSite(strings.Replace(goodDynamic, "purpose: tourist-webcam, ", "", 1)), "cameras[1].dynamic.purpose", "G-4.5"},
		{"face without prior check", dynamicSite(strings.Replace(goodDynamic, "[motion, hog]", "[motion, face_frontal]", 1)), "cameras[1].dynamic.detectors", "G-3.2.1"},
		{"unknown detector", dynamicSite(strings.Replace(goodDynamic, "[motion, hog]", "[yolo]", 1)), "cameras[1].dynamic", "yolo"},
		{"no zone", dynamicSite(strings.Replace(goodDynamic, "dynamic_zone", "x_zone", 1)), "", "x_zone"},
		{"zone outside", dynamicSite(strings.Replace(goodDynamic, "{x: 1, y: 1}", "{x: 1.5, y: 1}", 1)), "cameras[1].dynamic", "outside [0,1]"},
		{"weak pixelate", dynamicSite(goodDynamic + ", style: pixelate, block: 3"), "cameras[1].dynamic", "G-4.5"},
		{"PTZ camera, one zone for all views", ptzDynamicSite(goodDynamic, presetZone), "cameras[0].dynamic.dynamic_zone", "per preset"},
		{"PTZ camera, preset without zone", ptzDynamicSite(ptzDynamic, ""), "cameras[0].presets[0].dynamic_zone", "required"},
		{"PTZ camera, preset zone outside", ptzDynamicSite(ptzDynamic, strings.Replace(presetZone, "x: 0.6", "x: -0.6", 1)), "cameras[0].presets[0].dynamic_zone", "outside [0,1]"},
		{"preset zone without dynamic", strings.Replace(ptzDynamicSite(ptzDynamic, presetZone), "    dynamic: {"+ptzDynamic+"}\n", "", 1), "cameras[0].presets[0].dynamic_zone", "without a dynamic section"},
	}
	for _, tc := range cases {
		p := testkit.WriteSite(t, tc.site)
		_, err := Load(p)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range []string{p + ":", tc.field, tc.reason} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
		if tc.field != "" && strings.Contains(err.Error(), ":0:") {
			t.Errorf("%s: no line in %q", tc.name, err)
		}
	}
}

// One frame written outside the live stream (mask preview, dossier
// snapshot) has no detections: its mask set covers the whole dynamic_zone,
// while the live stream's does not (the stage masks the people in it).
func TestG45_StillsMaskTheWholeDynamicZone(t *testing.T) {
	c, err := Load(testkit.WriteSite(t, dynamicSite(goodDynamic)))
	if err != nil {
		t.Fatal(err)
	}
	cam := c.Cameras[1]
	live, still := cam.MaskSets(), cam.StillMaskSets()
	if len(live) != 1 || len(still) != 1 || len(still[0].Masks) != len(live[0].Masks)+1 {
		t.Fatalf("mask sets: live %+v, still %+v", live, still)
	}
	z := still[0].Masks[len(still[0].Masks)-1]
	if z.Name != "dynamic_zone" || len(z.Polygon) != len(cam.Dynamic.Zone) || z.Style != cam.Dynamic.Style {
		t.Errorf("the still's zone mask: %+v, want the dynamic_zone with the section's style", z)
	}
	if fixed := c.Cameras[0].StillMaskSets(); len(fixed[0].Masks) != len(c.Cameras[0].MaskSets()[0].Masks) {
		t.Errorf("a camera without dynamic masking got an extra mask in its stills")
	}
}
