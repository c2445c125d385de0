package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"golang.org/x/net/netutil"
)

// Source returns the figures of now; it is called at every scrape, from
// the HTTP server's goroutines.
type Source func() Snapshot

// collector turns a Snapshot into Prometheus metrics at each scrape.
type collector struct {
	src Source
	in, out, dropped, blanked, mismatches,
	up, status, depth, obDropped, synced *prometheus.Desc
}

func newCollector(src Source) *collector {
	cam := []string{"camera"}
	return &collector{src: src,
		in:         prometheus.NewDesc("velo_camera_frames_in_total", "Frames captured from the camera since velo started.", cam, nil),
		out:        prometheus.NewDesc("velo_camera_frames_out_total", "Masked frames encoded since velo started.", cam, nil),
		dropped:    prometheus.NewDesc("velo_camera_dropped_total", "Frames dropped by the fail-closed masker since velo started.", cam, nil),
		blanked:    prometheus.NewDesc("velo_camera_blanked_total", "Frames blanked by the fail-closed masker since velo started.", cam, nil),
		mismatches: prometheus.NewDesc("velo_camera_view_mismatches_total", "view_mismatch events since velo started.", cam, nil),
		up:         prometheus.NewDesc("velo_camera_up", "1 while the camera is streaming its approved view.", cam, nil),
		status:     prometheus.NewDesc("velo_camera_status", "1 for the camera's current status, 0 for the others.", []string{"camera", "status"}, nil),
		depth:      prometheus.NewDesc("velo_outbox_depth", "Messages in the durable outbox waiting for the broker.", nil, nil),
		obDropped:  prometheus.NewDesc("velo_outbox_dropped_total", "Messages the outbox dropped over its cap (oldest first), since it was created.", nil, nil),
		synced:     prometheus.NewDesc("velo_clock_synced", "1 when the kernel clock is NTP-synchronised (adjtimex STA_UNSYNC clear).", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.in, c.out, c.dropped, c.blanked, c.mismatches, c.up, c.status, c.depth, c.obDropped, c.synced} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src()
	for _, cam := range s.Cameras {
		for _, m := range []struct {
			d *prometheus.Desc
			v uint64
		}{{c.in, cam.FramesIn}, {c.out, cam.FramesOut}, {c.dropped, cam.Dropped}, {c.blanked, cam.Blanked}, {c.mismatches, cam.ViewMismatches}} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v), cam.ID)
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolValue(cam.Status == "streaming"), cam.ID)
		for _, st := range Statuses {
			ch <- prometheus.MustNewConstMetric(c.status, prometheus.GaugeValue, boolValue(cam.Status == st), cam.ID, st)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Gateway.OutboxDepth))
	ch <- prometheus.MustNewConstMetric(c.obDropped, prometheus.CounterValue, float64(s.Gateway.OutboxDropped))
	ch <- prometheus.MustNewConstMetric(c.synced, prometheus.GaugeValue, boolValue(s.Gateway.ClockSynced))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves the figures of src, the Go runtime's and the process's
// (CPU, memory, file descriptors) in the Prometheus text format.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(src), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Serve serves /metrics on listen until ctx ends. An address another
// process holds is retried with backoff (1 s to 30 s) and logged, never
// fatal: the figures are not worth stopping the cameras for.
func Serve(ctx context.Context, listen string, src Source, log zerolog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", Handler(src))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 15 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 8 << 10}
	ln, err := listenRetrying(ctx, listen, log)
	if err != nil {
		return nil // ctx ended
	}
	ln = netutil.LimitListener(ln, 16) // a scraper or two; a LAN flood waits in the backlog
	log.Info().Str("listen", listen).Msg("metrics: serving /metrics")
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err = srv.Serve(ln)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func listenRetrying(ctx context.Context, listen string, log zerolog.Logger) (net.Listener, error) {
	backoff := time.Second
	for {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", listen)
		if err == nil {
			return ln, nil
		}
		log.Warn().Err(err).Str("listen", listen).Dur("retry_in", backoff).Msg("metrics: cannot listen, retrying")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}
