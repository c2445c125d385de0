package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"velo/onvif"
)

type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

// readPassword reads a password file: the first line, without its newline.
func readPassword(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	pw, _, _ := strings.Cut(string(data), "\n")
	pw = strings.TrimRight(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("password file %s: empty first line", path)
	}
	return pw, nil
}

// discoverRow is one camera in `velo discover --json`.
type discoverRow struct {
	Address      string   `json:"address"`
	XAddr        string   `json:"xaddr"`
	XAddrs       []string `json:"xaddrs"`
	Endpoint     string   `json:"endpoint"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	Firmware     string   `json:"firmware"`
	Serial       string   `json:"serial"`
	HardwareID   string   `json:"hardware_id"`
	Name         string   `json:"scope_name,omitempty"`
	Hardware     string   `json:"scope_hardware,omitempty"`
	NeedsAuth    bool     `json:"needs_auth"`
	Withheld     bool     `json:"credentials_withheld"`
	Error        string   `json:"error,omitempty"`
}

type discoverOptions struct {
	ifaces, unicast, allow stringList
	noMulticast            bool
	window                 time.Duration
	user, pwFile           string
	json                   bool
}

func discoverCommand(s streams) *ffcli.Command {
	fs := newFlagSet("discover")
	o := &discoverOptions{}
	fs.Var(&o.ifaces, "iface", "interface `NAME` to probe on (default: every multicast-capable interface)")
	fs.Var(&o.unicast, "unicast", "`HOST|CIDR` to probe directly on port 3702")
	fs.BoolVar(&o.noMulticast, "no-multicast", false, "send unicast probes only")
	fs.DurationVar(&o.window, "window", 3*time.Second, "how long to collect replies")
	fs.StringVar(&o.user, "user", "", "ONVIF user `NAME` for cameras that need credentials")
	fs.StringVar(&o.pwFile, "password-file", "", "`FILE` whose first line is the password")
	fs.Var(&o.allow, "allow", "`IP|CIDR` credentials may be sent to; required with --user")
	fs.BoolVar(&o.json, "json", false, "print JSON (see docs/cli-json.md)")
	return &ffcli.Command{
		Name:       "discover",
		ShortUsage: synopsis("velo discover", fs, ""),
		ShortHelp:  "find ONVIF cameras with WS-Discovery",
		LongHelp: `Find ONVIF cameras with WS-Discovery (multicast and/or unicast) and
print address, manufacturer, model, firmware, serial and whether they
need credentials. Credentials go only to hosts on --allow: a spoofed
WS-Discovery reply cannot harvest them.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(ctx, s)
		},
	}
}

func (o *discoverOptions) run(ctx context.Context, s streams) error {
	creds, err := o.credentials()
	if err != nil {
		return err
	}
	al, err := onvif.ParseAllowList(o.allow)
	if err != nil {
		return usageError{msg: err.Error()}
	}
	devs, err := onvif.Discover(ctx, onvif.DiscoverOptions{Interfaces: o.ifaces, Unicast: o.unicast, NoMulticast: o.noMulticast, Window: o.window})
	if err != nil {
		return err
	}
	rows := identifyAll(ctx, devs, creds, al)
	if o.json {
		enc := json.NewEncoder(s.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	return printDiscovered(s.stdout, rows)
}

// credentials are the ONVIF credentials to try (nil without --user).
func (o *discoverOptions) credentials() (*onvif.Credentials, error) {
	if o.user == "" {
		return nil, nil
	}
	if len(o.allow) == 0 {
		return nil, usageError{msg: "discover: --user needs --allow: credentials go only to listed hosts"}
	}
	if o.pwFile == "" {
		return nil, usageError{msg: "discover: --user needs --password-file"}
	}
	pw, err := readPassword(o.pwFile)
	if err != nil {
		return nil, err
	}
	return &onvif.Credentials{Username: o.user, Password: pw}, nil
}

// identifyAll reads every discovered device's identity, concurrently.
func identifyAll(ctx context.Context, devs []onvif.Device, creds *onvif.Credentials, al onvif.AllowList) []discoverRow {
	rows := make([]discoverRow, len(devs))
	var wg sync.WaitGroup
	for i, d := range devs {
		wg.Go(func() {
			id := onvif.Identify(ctx, d, creds, al)
			r := discoverRow{Address: d.From, XAddr: id.XAddr, XAddrs: d.XAddrs, Endpoint: d.Endpoint, Name: d.Name,
				Hardware: d.Hardware, NeedsAuth: id.NeedsAuth, Withheld: id.CredentialsWithheld, Error: id.Error}
			if id.Info != nil {
				r.Manufacturer, r.Model, r.Firmware, r.Serial, r.HardwareID = id.Info.Manufacturer, id.Info.Model,
					id.Info.FirmwareVersion, id.Info.SerialNumber, id.Info.HardwareID
			}
			rows[i] = r
		})
	}
	wg.Wait()
	return rows
}

// printDiscovered prints the rows as a table, then their errors.
func printDiscovered(w io.Writer, rows []discoverRow) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tMANUFACTURER\tMODEL\tFIRMWARE\tSERIAL\tNEEDS-AUTH\tXADDR")
	for _, r := range rows {
		na := "no"
		if r.NeedsAuth {
			na = "yes"
			if r.Withheld {
				na = "yes (not on allow-list)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Address, dash(r.Manufacturer), dash(r.Model), dash(r.Firmware), dash(r.Serial), na, r.XAddr)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", r.Address, r.Error)
		}
	}
	fmt.Fprintf(w, "%d camera(s) found\n", len(rows))
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
