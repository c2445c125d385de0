package agent

import (
	"context"
	"sync"

	"velo/agent/recserve"
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
	srv, err := recserve.Listen(a.opts.RecordingSocket)
	if err != nil {
		return wait, err
	}
	srv.Config, srv.Store, srv.Audit = a.cfg.Load, st, al
	srv.Log = a.log.With().Str("part", "recordings").Logger()
	a.log.Info().Str("socket", srv.Path()).Msg("recordings served to velo recording on the local socket")
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ctx) })
	return wg.Wait, nil
}
