package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/peterbourgon/ff/v3/ffcli"

	"velo/fleet"
)

func fleetCommand(s streams) *ffcli.Command {
	return group("velo fleet", "central operations: the fleet's state from MQTT",
		`Central side of the gateways' telemetry (docs/fleet.md): 'velo fleet run'
keeps every gateway's and camera's state from the broker, checks each
gateway's audit chain head and exports Prometheus metrics; 'velo fleet
status' lists what needs attention.`,
		fleetRunCommand(s), fleetStatusCommand(s))
}

func fleetRunCommand(s streams) *ffcli.Command {
	fs := newFlagSet("fleet run")
	cfgPath := fs.String("config", "/etc/velo/fleet.yaml", "fleet config `FILE` (YAML, see docs/fleet.md)")
	debug := fs.Bool("debug", false, "debug logging")
	return &ffcli.Command{
		Name:       "run",
		ShortUsage: synopsis("velo fleet run", fs, ""),
		ShortHelp:  "keep the fleet's state from MQTT; serve its metrics",
		LongHelp: `Subscribe to every gateway's status, camera state, events and stats on
the broker of the config (events and stats through a shared subscription
when share_group is set, so several instances split them), keep the
latest state per gateway and camera (deduplicated by seq), check each
gateway's audit chain head (audit_seq must rise, under the same key), and
serve on the config's listen address (default 127.0.0.1:9787):
/metrics (Prometheus) and the read-only API that 'velo fleet status'
reads. The broker password is read from broker.password_file.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			cfg, err := fleet.Load(*cfgPath)
			if err != nil {
				return err
			}
			f, err := fleet.New(*cfg, agentLogger(s.stderr, *debug).With().Str("component", "fleet").Logger())
			if err != nil {
				return fmt.Errorf("fleet config %s: %w", *cfgPath, err)
			}
			return f.Run(ctx)
		},
	}
}

type fleetStatusOptions struct {
	addr, site, state string
	json              bool
	timeout           time.Duration
}

func fleetStatusCommand(s streams) *ffcli.Command {
	fs := newFlagSet("fleet status")
	o := &fleetStatusOptions{}
	fs.StringVar(&o.addr, "addr", fleet.DefaultListen, "`HOST:PORT` where 'velo fleet run' listens")
	fs.StringVar(&o.site, "site", "", "only this site `ID`")
	fs.StringVar(&o.state, "state", "", "only this `STATE`: "+strings.Join(fleet.AttnStates, ", "))
	fs.BoolVar(&o.json, "json", false, "print JSON (docs/cli-json.md) instead of a table")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "`DURATION` to wait for the answer")
	return &ffcli.Command{
		Name:       "status",
		ShortUsage: synopsis("velo fleet status", fs, ""),
		ShortHelp:  "list the gateways and cameras that need attention",
		LongHelp: `Ask the running 'velo fleet run' what needs attention, oldest first:
gateways offline, cameras blank (off their approved view), video-lost
or offline, drifting PTZ cameras and other tamper-like events within
the tamper window, audit heads missing, rewound or signed by another
key, outboxes that dropped events, clocks not synchronised. Each row
says since when. Exit status 0 whether or not something needs
attention.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(ctx, s)
		},
	}
}

func (o *fleetStatusOptions) run(ctx context.Context, s streams) error {
	if o.state != "" && !slices.Contains(fleet.AttnStates, o.state) {
		return usageError{msg: fmt.Sprintf("fleet status: --state %q; one of %s", o.state, strings.Join(fleet.AttnStates, ", "))}
	}
	q := url.Values{}
	if o.site != "" {
		q.Set("site", o.site)
	}
	if o.state != "" {
		q.Set("state", o.state)
	}
	findings, err := fetchAttention(ctx, o.addr, q, o.timeout)
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(s.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(findings)
	}
	printFindings(s.stdout, findings, time.Now())
	return nil
}

func fetchAttention(ctx context.Context, addr string, q url.Values, timeout time.Duration) ([]fleet.Finding, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := url.URL{Scheme: "http", Host: addr, Path: "/api/v1/attention", RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fleet status: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fleet status: is 'velo fleet run' listening on %s? %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fleet status: %s answered %s", addr, resp.Status)
	}
	var out []fleet.Finding
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("fleet status: the answer of %s: %w", addr, err)
	}
	return out, nil
}

func printFindings(w io.Writer, fs []fleet.Finding, now time.Time) {
	if len(fs) == 0 {
		fmt.Fprintln(w, "nothing needs attention")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tGATEWAY\tCAMERA\tSTATE\tSINCE\tFOR\tDETAIL")
	for _, f := range fs {
		cam := f.Camera
		if cam == "" {
			cam = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Site, f.Gateway, cam, f.State,
			f.Since.UTC().Format(time.RFC3339), now.Sub(f.Since).Round(time.Second), printable(f.Detail))
	}
	_ = tw.Flush()
}

// printable escapes control and bidi characters of what a gateway sent
// (an error text), so it cannot move the terminal's cursor or colours.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
