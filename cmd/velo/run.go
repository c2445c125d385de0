package main

import (
	"context"
	"fmt"
	"io"
	"os"

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
	fmt.Fprintf(stdout, "%s: OK (site %q, gateway %q, %d cameras, %d operators)\n", args[1], cfg.Site.Name, cfg.Gateway, len(cfg.Cameras), len(cfg.Operators))
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
	a := agent.New(cfg, log)
	for _, c := range cfg.Cameras {
		log.Info().Str("camera", c.ID).Str("stream", a.StreamURL(c.ID)).Msg("camera configured")
	}
	return a.Run(ctx)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
