package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"velo/agent/access"
	"velo/agent/config"
	"velo/agent/event"
	"velo/agent/telemetry"
	"velo/masking"
	"velo/masking/codec"
	"velo/masking/relay"
)

// recorderUser is the relay account the recorder reads with (its password
// is random per run).
const recorderUser = "velo-recorder"

// Run serves until ctx ends, then stops every camera, publishes an offline
// status and closes the relay, the broker connection and the outbox.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.cfg.Load()
	r := &running{ctx: ctx}
	ob, err := telemetry.OpenOutbox(filepath.Join(cfg.StateDir, "outbox.db"), int64(cfg.Broker.OutboxMaxMB)<<20)
	if err != nil {
		return err
	}
	defer ob.Close()
	r.outbox = ob
	a.mu.Lock()
	a.run = r // the audit log and telemetry join it as they open
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.run = nil
		a.mu.Unlock()
	}()
	if err := a.openCompliance(cfg, r); err != nil {
		return err
	}
	stopBroker, err := a.connectBroker(cfg, r)
	if err != nil {
		return err
	}
	defer stopBroker()
	if err := a.startRelay(cfg, r); err != nil {
		return err
	}
	defer r.rel.Close()
	if err := a.checkApprovedViews(cfg); err != nil {
		return err
	}
	a.logCodecs()
	recCtx, recStop := context.WithCancel(ctx)
	waitRec, err := a.serveRecordings(recCtx)
	if err != nil {
		recStop()
		return err
	}
	defer waitRec()
	defer recStop()
	if r.console, err = a.startConsole(cfg); err != nil {
		return err
	}
	a.serve(ctx, r)
	a.log.Info().Msg("stopped")
	return nil
}

// serve runs the loops and the camera workers until ctx ends, then stops
// them in order: cameras, the last seal, the last events, telemetry.
func (a *Agent) serve(ctx context.Context, r *running) {
	telCtx, telStop := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	for _, loop := range []func(context.Context){a.auditLoop, a.retentionLoop, a.discoveryLoop, a.commandLoop, a.statsLoop, a.statsPublishLoop, a.metricsLoop} {
		bg.Go(func() { loop(ctx) })
	}
	bg.Go(func() { _ = r.tel.Run(telCtx) })
	if r.console != nil {
		bg.Go(func() {
			if err := r.console.Serve(ctx); err != nil {
				a.log.Error().Err(err).Msg("console stopped")
			}
		})
	}
	a.startCameras(r)
	a.beat.Store(time.Now().UnixNano())
	close(a.ready)
	<-ctx.Done()
	a.reloadMu.Lock() // no reload while stopping
	r.camWG.Wait()
	a.reloadMu.Unlock()
	a.sealPending() // no recorder runs now: nothing stays in plaintext
	// Let the last events reach the broker, briefly, then say offline.
	deadline := time.Now().Add(3 * time.Second)
	for r.tel.Connected() && r.outbox.Stats().Pending > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	telStop()
	bg.Wait()
	a.mu.Lock()
	r.tel = nil // no more publishing after the offline status
	a.mu.Unlock()
}

// startCameras starts a worker per camera of the config in force and lets
// reloads act from then on (a reload during startup is refused: there is
// nothing to restart yet).
func (a *Agent) startCameras(r *running) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cfg := a.cfg.Load()
	a.mu.Lock()
	defer a.mu.Unlock()
	r.serving = true
	for i := range cfg.Cameras {
		a.startWorkerLocked(&cfg.Cameras[i])
	}
}

// connectBroker starts the embedded broker when none is configured and
// builds the telemetry client; the returned func stops the broker (a
// no-op after an error: nothing is left running). A busy embedded broker
// address is retried with backoff (telemetry waits for it, events wait in
// the outbox): a local process holding the port does not stop velo.
func (a *Agent) connectBroker(cfg *config.Config, r *running) (stop func(), err error) {
	stop = func() {}
	var embedded *telemetry.EmbeddedBroker
	if cfg.Broker.URL == "" {
		embedded, err = telemetry.NewEmbeddedBroker(telemetry.BrokerOptions{Listen: cfg.Broker.EmbeddedListen, Site: cfg.Site.ID,
			Gateway: cfg.Gateway, ClientID: cfg.Broker.ClientID, Operator: a.brokerOperator, Log: a.log})
		if err != nil {
			return stop, err
		}
		if err := embedded.Start(); err != nil {
			go embedded.StartRetrying(r.ctx)
		} else {
			a.log.Info().Str("broker", embedded.URL()).Msg("no broker configured: embedded MQTT broker started on loopback")
		}
		stop = func() { embedded.Close() }
	}
	tel, err := a.newTelemetry(cfg, embedded, r.outbox)
	if err != nil {
		stop()
		return func() {}, err
	}
	a.mu.Lock()
	r.tel = tel
	a.mu.Unlock()
	return stop, nil
}

// brokerOperator is how the embedded broker knows an operator of the
// config in force: they log in with their stream password (derived from
// their password like the RTSP one, so the password itself never goes to
// the broker), checked against the credential's SHA-256 digest, one hash
// per attempt; admins may also read the events.
func (a *Agent) brokerOperator(name string) (telemetry.BrokerOperator, bool) {
	op := a.cfg.Load().Operator(name)
	if op == nil || op.Credential() == nil {
		return telemetry.BrokerOperator{}, false
	}
	cred := op.Credential()
	return telemetry.BrokerOperator{ReadEvents: slices.Contains(op.Roles, access.RoleAdmin), CheckSecret: func(secret []byte) bool {
		_, want, err := cred.StreamHA1(a.opts.Clock.Now())
		if err != nil { // an expired stream password logs in nowhere
			return false
		}
		got := sha256.Sum256([]byte(name + ":" + access.RTSPRealm + ":" + string(secret)))
		return subtle.ConstantTimeCompare([]byte(hex.EncodeToString(got[:])), []byte(want)) == 1
	}}, true
}

// newTelemetry builds the MQTT client of this gateway: to the configured
// broker, or (embedded non-nil) to the embedded one as Velo.
func (a *Agent) newTelemetry(cfg *config.Config, embedded *telemetry.EmbeddedBroker, ob *telemetry.Outbox) (*telemetry.Telemetry, error) {
	tlsConf, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	user, pass := cfg.BrokerCredentials()
	return telemetry.NewTelemetry(telemetry.TelemetryConfig{Site: cfg.Site.ID, Gateway: cfg.Gateway, URL: cfg.Broker.URL, Embedded: embedded, TLS: tlsConf,
		Username: user, Password: pass, ClientID: cfg.Broker.ClientID, Version: a.opts.Version,
		KeepAlive: time.Duration(cfg.Broker.KeepAlive), AckTimeout: time.Duration(cfg.Broker.AckTimeout),
		BackoffMax: time.Duration(cfg.Broker.BackoffMax), Outbox: ob, Log: a.log, OnCommand: newAdmission(a).queue})
}

// startRelay serves the masked streams: operators with their stream
// password (role, camera and schedule checked at each PLAY), the recorder
// with a random password of this run; over plaintext RTSP (loopback
// unless the config allows the LAN) and RTSPS when configured.
func (a *Agent) startRelay(cfg *config.Config, r *running) error {
	a.mu.Lock()
	r.recorder = [2]string{recorderUser, randomSecret()}
	a.mu.Unlock()
	rel, err := relay.New(cfg.Outputs.RTSPListen, access.RTSPRealm, func(user, name string) (relay.Secret, bool) {
		if user == recorderUser {
			if !a.scheduleActive(name) {
				return relay.Secret{}, false // G-4.3: nothing recorded outside the schedule
			}
			return relay.Password(r.recorder[1]), true
		}
		return a.liveAllowed(user, name)
	})
	if err != nil {
		return err
	}
	o := cfg.Outputs
	rel.Limits = relay.Limits{MaxConns: o.RTSPMaxConns, MaxConnsPerIP: o.RTSPMaxConnsPerIP, LoginTimeout: time.Duration(o.RTSPLoginTimeout),
		MaxPause: a.opts.RelayMaxPause}
	tlsConf, err := cfg.RTSPSTLS()
	if err != nil {
		return err
	}
	if tlsConf != nil {
		rel.ListenTLS(o.RTSPS.Listen, tlsConf)
	}
	rel.OnAccess = func(user, name, remote string, ok bool) {
		if user != recorderUser {
			a.auditAccess(user, name, remote, ok)
		}
	}
	rel.OnListenerError = a.relayListenerError
	if err := rel.Start(); err != nil {
		return err
	}
	a.mu.Lock()
	r.rel = rel
	a.mu.Unlock()
	a.log.Info().Str("listen", o.RTSPListen).Str("rtsps", o.RTSPS.Listen).Msg("masked rtsp relay up")
	return nil
}

// relayListenerError reports the relay's accept failures: a temporary one
// (out of file descriptors: the relay retries) is logged; a listener
// stopped for good is an event, since no viewer can connect there again.
func (a *Agent) relayListenerError(listen string, err error, stopped bool) {
	if !stopped {
		a.log.Warn().Str("listen", listen).Err(err).Msg("rtsp relay: accept failed, retrying with backoff")
		return
	}
	a.emit(event.Event{Kind: event.RelayStopped, Detail: fmt.Sprintf("rtsp relay listener %s stopped: %v", listen, err)})
}

// liveAllowed is the relay's check: the operator's stream secret if user may
// view camera live now (role, assignment, schedule, stream password not
// expired).
func (a *Agent) liveAllowed(user, camera string) (relay.Secret, bool) {
	if !a.scheduleActive(camera) {
		return relay.Secret{}, false // G-4.3: no video at all outside the schedule
	}
	op := a.cfg.Load().Operator(user)
	if op == nil || op.Credential() == nil || op.May(access.ActLiveView, camera) != nil {
		return relay.Secret{}, false
	}
	md5, sha, err := op.Credential().StreamHA1(a.opts.Clock.Now())
	if err != nil {
		return relay.Secret{}, false // expired: config check says how to rotate it
	}
	return relay.Secret{HA1MD5: md5, HA1SHA256: sha}, true
}

// revokeLiveViews cuts the open live views their operators may no longer
// watch (G-3.3.1 a): removed from the config or from that camera by a
// reload, stream password expired, or the camera's schedule over (G-4.3).
// The recorder's reads end with their camera's worker instead.
func (a *Agent) revokeLiveViews(why string) {
	a.mu.Lock()
	var rel *relay.Server
	if a.run != nil {
		rel = a.run.rel
	}
	a.mu.Unlock()
	if rel == nil {
		return
	}
	cut := rel.Revoke(func(user, camera string) bool {
		if user == recorderUser {
			return true
		}
		_, ok := a.liveAllowed(user, camera)
		return ok
	})
	for _, c := range cut {
		a.emit(event.Event{Kind: event.AccessDenied, Operator: c[0], Camera: c[1],
			Detail: fmt.Sprintf("open live stream to %s cut (%s): the operator may no longer watch this camera", c[2], why)})
	}
}

func randomSecret() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// logCodecs probes the codec elements once, before the cameras start (so
// no camera's first open waits for it), and logs what the frame path will
// use: per codec, the decoder and encoder chosen and the preferred ones
// that failed (docs/masking.md, "Codecs").
func (a *Agent) logCodecs() {
	els := masking.ProbeElements()
	for _, c := range codec.All {
		ev := a.log.Info().Str("codec", string(c)).Float64("probe_ms", els.TookMS)
		if d, ok := els.Decoder(c); ok {
			ev = ev.Str("decoder", d.Name)
		}
		if e, ok := els.Encoder(c); ok {
			ev = ev.Str("encoder", e.Name)
		}
		if sk := strings.Trim(els.Skipped(c, "decoder")+", "+els.Skipped(c, "encoder"), ", "); sk != "" {
			ev = ev.Str("failed", sk)
		}
		ev.Msg("codec elements")
	}
}
