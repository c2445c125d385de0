package agent

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"velo/agent/config"
	"velo/agent/recserve"
	"velo/masking/anonymise"
	"velo/masking/anonymise/spec"
)

// serveRecordings serves the recordings to velo recording on
// Options.RecordingSocket while the site records (G-3.4: the CLI never
// reads the state directory nor the keys). The returned func waits for
// the server, which stops when ctx ends. A socket that cannot be made
// stops the start: no silent fallback.
func (a *Agent) serveRecordings(ctx context.Context) (wait func(), err error) {
	wait = func() {}
	al, st, _ := a.compliance()
	if st == nil || a.opts.RecordingSocket == "" {
		return wait, nil
	}
	if err := recserve.ClearSubjectTemp(a.cfg.Load().StateDir); err != nil {
		return wait, fmt.Errorf("recordings: %w", err)
	}
	srv, err := recserve.Listen(a.opts.RecordingSocket)
	if err != nil {
		return wait, err
	}
	srv.Config, srv.Store, srv.Audit = a.cfg.Load, st, al
	srv.Subjects = subjectCopies{cfg: a.cfg.Load}
	srv.Log = a.log.With().Str("part", "recordings").Logger()
	a.log.Info().Str("socket", srv.Path()).Msg("recordings served to velo recording on the local socket")
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ctx) })
	return wg.Wait, nil
}

// subjectCopies makes data subjects' copies (G-3.5) with the frame path's
// detectors: those of the camera's dynamic masking (chosen for its view,
// and listed in the dossier) plus plates, masked in its style; without
// one, people by HOG and motion, and plates.
type subjectCopies struct{ cfg func() *config.Config }

func (s subjectCopies) CopySubject(ctx context.Context, job spec.SubjectJob, w io.Writer) (spec.SubjectReport, error) {
	base := anonymise.Config{Detectors: slices.Clone(anonymise.SubjectDetectors)}
	if c := s.cfg().Camera(job.Camera); c != nil && c.Dynamic != nil {
		d := c.Dynamic.Spec(c)
		base.Detectors = slices.Clone(d.Detectors)
		if !slices.Contains(base.Detectors, anonymise.Plate) {
			base.Detectors = append(base.Detectors, anonymise.Plate)
		}
		base.CascadeDir, base.DetectWidth, base.MinLuma = d.CascadeDir, d.DetectWidth, d.MinLuma
		base.Style, base.Color, base.Block, base.Strength = d.Style, d.Color, d.Block, d.Strength
	}
	return anonymise.Subjects{Base: base}.CopySubject(ctx, job, w)
}
