package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"velo/agent"
)

func cmdConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 || args[0] != "check" {
		return usageError{"config: usage: velo config check FILE"}
	}
	cfg, err := agent.Load(args[1])
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: OK (site %q, gateway %q, %d cameras, %d operators, %d warnings)\n", args[1], cfg.Site.Name, cfg.Gateway, len(cfg.Cameras), len(cfg.Operators), len(cfg.Warnings))
	return nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr, "velo run: run the gateway agent on a site config.")
	cfgPath := fs.String("config", "/etc/velo/site.yaml", "site config (YAML, see docs/config.md)")
	debug := fs.Bool("debug", false, "debug logging")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := agent.Load(*cfgPath)
	if err != nil {
		return err
	}
	level := zerolog.InfoLevel
	if *debug {
		level = zerolog.DebugLevel
	}
	var out io.Writer = stderr
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		out = zerolog.ConsoleWriter{Out: stderr}
	}
	log := zerolog.New(out).Level(level).With().Timestamp().Str("gateway", cfg.Gateway).Logger()
	for _, w := range cfg.Warnings {
		log.Warn().Msg(w)
	}
	a := agent.New(cfg, log)
	a.Version = version
	for _, c := range cfg.Cameras {
		log.Info().Str("camera", c.ID).Str("stream", a.StreamURL(c.ID)).Msg("camera configured")
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
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
	}()
	go func() {
		select {
		case <-a.Ready():
			if err := sdNotify("READY=1"); err != nil {
				log.Warn().Err(err).Msg("systemd notify")
			}
			watchdog(ctx, a.Healthy)
		case <-ctx.Done():
		}
	}()
	err = a.Run(ctx)
	_ = sdNotify("STOPPING=1")
	return err
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
