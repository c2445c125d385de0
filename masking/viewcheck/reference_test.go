package viewcheck_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"velo/masking"
	"velo/masking/maskspec"
	"velo/masking/viewcheck"
)

// inside reports whether (x, y) is inside the polygon (even-odd rule).
func inside(poly []maskspec.Point, x, y float64) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a.Y > y) != (b.Y > y) && x < (b.X-a.X)*(y-a.Y)/(b.Y-a.Y)+a.X {
			in = !in
		}
	}
	return in
}

// paintMasked sets every luma pixel under a mask of set to v.
func paintMasked(f *masking.Frame, set maskspec.MaskSet, v byte) {
	y, _, _ := f.Planes()
	for r := 0; r < f.H; r++ {
		for c := 0; c < f.W; c++ {
			for _, m := range set.Masks {
				if inside(m.Polygon, (float64(c)+0.5)/float64(f.W), (float64(r)+0.5)/float64(f.H)) {
					y[r*f.W+c] = v
				}
			}
		}
	}
}

// What is under a mask never reaches the reference: two frames that differ
// only there give the same reference, and every reference pixel that a
// masked source pixel falls in is excluded.
func TestReferenceKeepsNothingMasked(t *testing.T) {
	sc := newScene(t, 4)
	set := siteMasks()
	white, black := sc.frame(t, view{}), sc.frame(t, view{})
	paintMasked(white, set, 255)
	paintMasked(black, set, 0)
	rw, err := viewcheck.NewReference(white, set, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := viewcheck.NewReference(black, set, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rw.Exclude, rb.Exclude) {
		t.Fatal("exclusion depends on the pixels")
	}
	for i := range rw.Luma {
		if rw.Exclude[i] == 0 && rw.Luma[i] != rb.Luma[i] {
			t.Fatalf("reference pixel %d (%d,%d) not excluded but shows masked content: %d vs %d",
				i, i%rw.Width, i/rw.Width, rw.Luma[i], rb.Luma[i])
		}
	}
	var fill = -1
	for i, e := range rw.Exclude {
		if e == 0 {
			continue
		}
		if fill < 0 {
			fill = int(rw.Luma[i])
		}
		if int(rw.Luma[i]) != fill || rw.Luma[i] == 255 {
			t.Fatalf("excluded pixel %d holds %d, want the one fill value", i, rw.Luma[i])
		}
	}
	sx, sy := float64(white.W)/float64(rw.Width), float64(white.H)/float64(rw.Height)
	for r := 0; r < white.H; r += 2 {
		for c := 0; c < white.W; c += 2 {
			for _, m := range set.Masks {
				if inside(m.Polygon, (float64(c)+0.5)/float64(white.W), (float64(r)+0.5)/float64(white.H)) {
					if i := int(float64(r)/sy)*rw.Width + int(float64(c)/sx); rw.Exclude[i] == 0 {
						t.Fatalf("source pixel (%d,%d) under mask %q falls in reference pixel %d, not excluded", c, r, m.Name, i)
					}
				}
			}
		}
	}
	if rw.Width != viewcheck.RefWidth || rw.Height != 180 {
		t.Errorf("size %dx%d, want %dx180", rw.Width, rw.Height, viewcheck.RefWidth)
	}
}

func TestReferenceRefusesWholeFrameMask(t *testing.T) {
	sc := newScene(t, 4)
	set := maskspec.MaskSet{Camera: "cam1", Preset: "door", Masks: []maskspec.Mask{{Name: "all", Style: maskspec.StyleFull}}}
	_, err := viewcheck.NewReference(sc.frame(t, view{}), set, false, nil)
	if err == nil || !strings.Contains(err.Error(), `"door"`) {
		t.Fatalf("err = %v, want a refusal naming the preset", err)
	}
}

func TestReferenceSaveLoad(t *testing.T) {
	sc := newScene(t, 5)
	f := sc.frame(t, view{})
	f.Captured = time.Date(2026, 3, 4, 5, 6, 7, 891_234_567, time.UTC)
	set := siteMasks()
	set.Preset = "gate"
	ref, err := viewcheck.NewReference(f, set, true, &viewcheck.Position{Pan: 0.25, Tilt: -0.5, Zoom: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "cam1-gate.pgm")
	if err := ref.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files in the folder after Save, want 1 (no temporary left)", len(ents))
	}
	raw, _ := os.ReadFile(path)
	if !bytes.HasPrefix(raw, []byte("P5\n# velo-view-reference {")) {
		t.Errorf("file starts %q, want a PGM with the JSON header", raw[:min(40, len(raw))])
	}
	sum := sha256.Sum256(raw)
	if ref.SHA256() != hex.EncodeToString(sum[:]) {
		t.Errorf("SHA256 %s is not the file's %x", ref.SHA256(), sum)
	}
	got, err := viewcheck.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Camera != "cam1" || got.Preset != "gate" || !got.Night || got.Width != ref.Width || got.Height != ref.Height ||
		!got.Captured.Equal(time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)) ||
		got.Position == nil || *got.Position != *ref.Position || got.Basis != ref.Basis ||
		!bytes.Equal(got.Luma, ref.Luma) || !bytes.Equal(got.Exclude, ref.Exclude) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got.Basis, ref.Basis)
	}
	if got.SHA256() != ref.SHA256() {
		t.Error("SHA256 changed over a round trip")
	}
	v, err := viewcheck.New([]*viewcheck.Reference{got}, viewcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	nf := sc.frame(t, view{})
	night(nf)
	if vd := v.Check(nf, "gate"); !vd.OK {
		t.Errorf("loaded reference refuses its own view: %+v", vd)
	}
}

func TestReferenceLoadRefusesDamagedFiles(t *testing.T) {
	sc := newScene(t, 5)
	ref, err := viewcheck.NewReference(sc.frame(t, view{}), siteMasks(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	good, err := ref.Encode()
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-ref.Width*ref.Height-77] ^= 0x10 // a luma byte
	edited := bytes.Replace(good, []byte(`"night":false`), []byte(`"night":true`), 1)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"corrupted pixel", flipped, "corrupted"},
		{"truncated", good[:len(good)-100], "bytes of pixels"},
		{"not a reference", []byte("P5\n320 360\n255\n"), "no velo-view-reference header"},
		{"empty", nil, "not a view reference"},
		{"a JPEG", []byte{0xff, 0xd8, 0xff, 0xe0}, "not a view reference"},
	}
	if !bytes.Equal(edited, good) {
		// The header is not covered by the payload checksum, but the
		// file's SHA256 (audited) changes with it.
		r2, err := viewcheck.Decode(edited)
		if err != nil || r2.SHA256() == ref.SHA256() {
			t.Errorf("edited header: err %v, SHA256 unchanged %v", err, r2 != nil && r2.SHA256() == ref.SHA256())
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ref.pgm")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := viewcheck.Load(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one naming %s and saying %q", err, path, c.want)
			}
		})
	}
	if _, err := viewcheck.Load(filepath.Join(t.TempDir(), "missing.pgm")); err == nil || !strings.Contains(err.Error(), "missing.pgm") {
		t.Errorf("missing file: err = %v", err)
	}
}

// Each view is checked against its own references; a view without one is
// reported, and one verifier serves one camera.
func TestVerifierViews(t *testing.T) {
	gate, yard := newScene(t, 6), newScene(t, 7)
	gateSet, yardSet := siteMasks(), siteMasks()
	gateSet.Preset, yardSet.Preset = "gate", "yard"
	rg, err := viewcheck.NewReference(gate.frame(t, view{}), gateSet, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ry, err := viewcheck.NewReference(yard.frame(t, view{}), yardSet, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := viewcheck.New([]*viewcheck.Reference{rg, ry}, viewcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	cases := []struct {
		name   string
		frame  *masking.Frame
		view   string
		ok     bool
		reason string
	}{
		{"gate as gate", gate.frame(t, view{}), "gate", true, ""},
		{"yard as yard", yard.frame(t, view{}), "yard", true, ""},
		{"yard shown while at gate", yard.frame(t, view{}), "gate", false, viewcheck.ReasonScene},
		{"a view without reference", gate.frame(t, view{}), "", false, viewcheck.ReasonNoReference},
		{"a frame too small", masking.NewFrame(8, 8), "gate", false, viewcheck.ReasonScene},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := v.Check(c.frame, c.view)
			if got.OK != c.ok || got.Reason != c.reason {
				t.Fatalf("verdict %+v, want OK %v reason %q", got, c.ok, c.reason)
			}
		})
	}
	other := *ry
	other.Camera = "cam2"
	if _, err := viewcheck.New([]*viewcheck.Reference{rg, &other}, viewcheck.Options{}); err == nil || !strings.Contains(err.Error(), "cam2") {
		t.Errorf("references of two cameras: err = %v", err)
	}
}
