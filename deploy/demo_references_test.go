package deploy

import (
	"testing"
	"time"

	"velo/agent/config"
	"velo/masking"
	"velo/masking/viewcheck"
	"velo/onvif/camsim"
)

// The demo ships a reference picture of every approved view (make run
// streams nothing without them, verify.require_reference being on): each
// must exist, be intact, and still match the simulator's picture of that
// view, with its traffic, so a change to the simulator's scenes that
// invalidates them fails here and not in front of a user.
func TestDemoReferencesMatchTheSimulator(t *testing.T) {
	if raceEnabled {
		t.Skip("renders every demo view at full size, one goroutine: run without -race (make test's second pass)")
	}
	cfg, err := config.LoadUnchecked("demo/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := camsim.DemoConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range sim.Cameras {
		cam := cfg.Camera(sc.ID)
		if cam == nil {
			t.Fatalf("demo camera %q is not in the demo site", sc.ID)
		}
		for _, set := range cam.MaskSets() {
			ref, err := viewcheck.Load(cfg.ReferencePath(cam.ID, set.Preset, false))
			if err != nil {
				t.Fatalf("camera %q view %q: %v", cam.ID, set.Preset, err)
			}
			v, err := viewcheck.New([]*viewcheck.Reference{ref}, viewcheck.Options{MaxShift: cfg.MaxShift(cam, set.Preset)})
			if err != nil {
				t.Fatal(err)
			}
			pos := camsim.Position{}
			for _, p := range cam.Presets {
				if p.Token == set.Preset {
					pos = camsim.Position{Pan: p.Position.Pan, Tilt: p.Position.Tilt, Zoom: p.Position.Zoom}
				}
			}
			for i := 0; i < 30; i++ { // 3 s of traffic
				st := camsim.DayCycle(0, 0)
				st.T, st.Traffic = time.Duration(i)*100*time.Millisecond, sc.Traffic
				f := &masking.Frame{W: sc.Width, H: sc.Height, Data: camsim.RenderI420(sc.Scene, sc.Width, sc.Height, pos, st), Captured: time.Now()}
				if vd := v.Check(f, set.Preset); !vd.OK {
					t.Errorf("camera %q view %q frame %d: the shipped reference no longer matches the simulator: %+v", cam.ID, set.Preset, i, vd)
					break
				}
			}
			v.Close()
		}
	}
}
