package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/rs/zerolog"

	"velo/agent"
	"velo/agent/config"
)

func configCommand(s streams) *ffcli.Command {
	fs := newFlagSet("config check")
	check := &ffcli.Command{
		Name:       "check",
		ShortUsage: synopsis("velo config check", fs, "FILE"),
		ShortHelp:  "validate a site config",
		LongHelp: `Load FILE as velo run would: every error names the file, line, field
and reason; warnings (e.g. a plaintext operator password) are printed on
standard error. Prints a one-line summary when the config is valid.`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if len(args) != 1 {
				return usageError{msg: "config: usage: velo config check FILE"}
			}
			return configCheck(s, args[0])
		},
	}
	return group("velo config", "check site configs", "", check)
}

func configCheck(s streams, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(s.stderr, "warning:", w)
	}
	fmt.Fprintf(s.stdout, "%s: OK (site %q, gateway %q, %d cameras, %d operators, %d warnings)\n", path, cfg.Site.Name, cfg.Gateway, len(cfg.Cameras), len(cfg.Operators), len(cfg.Warnings))
	return nil
}

type runOptions struct {
	config string
	debug  bool
}

func runCommand(s streams) *ffcli.Command {
	fs := newFlagSet("run")
	o := &runOptions{}
	fs.StringVar(&o.config, "config", "/etc/velo/site.yaml", "site config `FILE` (YAML, see docs/config.md)")
	fs.BoolVar(&o.debug, "debug", false, "debug logging")
	return &ffcli.Command{
		Name:       "run",
		ShortUsage: synopsis("velo run", fs, ""),
		ShortHelp:  "run the gateway agent on a site config",
		LongHelp: `Per camera: check its identity, lock PTZ to the approved preset, mask
before encoding and serve masked RTSP to operators; publish status,
camera state and events over MQTT (an embedded broker on loopback when
the config names none) and take signed commands. With console.listen
set, serve the installer console over HTTPS (docs/console.md).

SIGHUP reloads the config (an invalid one is refused, the old one kept).
Under systemd (Type=notify) velo says READY=1 and pings the watchdog
while it is healthy: every camera's frame path streaming or lost and
reconnecting, and hung capture calls within their bounds.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(ctx, s)
		},
	}
}

func (o *runOptions) run(ctx context.Context, s streams) error {
	cfg, err := config.Load(o.config)
	if err != nil {
		return err
	}
	log := agentLogger(s.stderr, o.debug).With().Str("gateway", cfg.Gateway).Logger()
	for _, w := range cfg.Warnings {
		log.Warn().Msg(w)
	}
	a := agent.New(cfg, log, agent.Options{Version: version, RecordingSocket: cfg.Outputs.RecordingSocket})
	for _, c := range cfg.Cameras {
		log.Info().Str("camera", c.ID).Str("stream", a.StreamURL(c.ID)).Msg("camera configured")
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { reloadOnHUP(ctx, a, log) })
	wg.Go(func() { notifySystemd(ctx, a, log) })
	err = a.Run(ctx)
	_ = sdNotify("STOPPING=1")
	cancel()
	wg.Wait()
	return err
}

// agentLogger logs to w: JSON lines, or readable text on a terminal.
func agentLogger(w io.Writer, debug bool) zerolog.Logger {
	level := zerolog.InfoLevel
	if debug {
		level = zerolog.DebugLevel
	}
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		w = zerolog.ConsoleWriter{Out: w}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// reloadOnHUP applies the config again at each SIGHUP until ctx ends.
func reloadOnHUP(ctx context.Context, a *agent.Agent, log zerolog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if res, err := a.Reload(); err != nil {
				log.Error().Err(err).Msg("SIGHUP: config refused; the running config is unchanged")
			} else {
				log.Info().Strs("added", res.Added).Strs("removed", res.Removed).Strs("restarted", res.Restarted).Msg("SIGHUP: config applied")
			}
		}
	}
}

// notifySystemd says READY=1 once the agent is ready, then pings the
// watchdog while it is healthy, until ctx ends.
func notifySystemd(ctx context.Context, a *agent.Agent, log zerolog.Logger) {
	select {
	case <-a.Ready():
		if err := sdNotify("READY=1"); err != nil {
			log.Warn().Err(err).Msg("systemd notify")
		}
		watchdog(ctx, a.Health, log)
	case <-ctx.Done():
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
