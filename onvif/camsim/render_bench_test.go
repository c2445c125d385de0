package camsim

import (
	"testing"
	"time"
)

// The live camera redraws only what moves while it does not move; a moving
// PTZ camera (or a fresh renderer) draws everything.
func BenchmarkRender1080p(b *testing.B) {
	for _, bc := range []struct {
		name  string
		scene string
		warm  bool
		st    SceneState
	}{
		{"badge/still", "badge", true, SceneState{Light: 1}},
		{"street/traffic", "street", true, SceneState{Light: 1, Traffic: true, Shadows: true}},
		{"street/night", "street", true, SceneState{Traffic: true, IR: true}},
		{"street/dusk", "street", true, SceneState{Light: 0.4, Traffic: true, Shadows: true}},
		{"badge/rotated", "badge", true, SceneState{Light: 1, Tamper: Tamper{RotateDeg: 5}}},
		{"badge/defocus", "badge", true, SceneState{Light: 1, Tamper: Tamper{Blur: 6}}},
		{"ptz/moving", "ptz", false, SceneState{Light: 1, Traffic: true}},
		{"badge/cold", "badge", false, SceneState{Light: 1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := NewFrame(1920, 1080)
			var r Renderer
			if bc.warm {
				r.Render(f, bc.scene, Position{}, bc.st)
			}
			for i := 0; b.Loop(); i++ {
				if !bc.warm {
					r = Renderer{}
				}
				st := bc.st
				st.T = time.Duration(i) * 100 * time.Millisecond
				r.Render(f, bc.scene, Position{}, st)
			}
		})
	}
}
