package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

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

func newFlags(name string, stderr io.Writer, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\nFlags:\n", help)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return errHelp
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
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

func cmdDiscover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("discover", stderr, "velo discover: find ONVIF cameras with WS-Discovery (multicast and/or unicast).")
	var ifaces, unicast, allow stringList
	fs.Var(&ifaces, "iface", "interface to probe on (repeatable; default: every multicast-capable interface)")
	fs.Var(&unicast, "unicast", "host or CIDR to probe directly on port 3702 (repeatable)")
	noMC := fs.Bool("no-multicast", false, "send unicast probes only")
	window := fs.Duration("window", 3*time.Second, "how long to collect replies")
	user := fs.String("user", "", "ONVIF user for cameras that need credentials")
	pwFile := fs.String("password-file", "", "file whose first line is the password")
	fs.Var(&allow, "allow", "IP or CIDR credentials may be sent to (repeatable); required with --user")
	asJSON := fs.Bool("json", false, "print JSON (see docs/cli-json.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var creds *onvif.Credentials
	if *user != "" && len(allow) == 0 {
		return usageError{"discover: --user needs --allow: credentials go only to listed hosts"}
	}
	if *user != "" {
		if *pwFile == "" {
			return usageError{"discover: --user needs --password-file"}
		}
		pw, err := readPassword(*pwFile)
		if err != nil {
			return err
		}
		creds = &onvif.Credentials{Username: *user, Password: pw}
	}
	al, err := onvif.ParseAllowList(allow)
	if err != nil {
		return usageError{err.Error()}
	}
	devs, err := onvif.Discover(ctx, onvif.DiscoverOptions{Interfaces: ifaces, Unicast: unicast, NoMulticast: *noMC, Window: *window})
	if err != nil {
		return err
	}
	rows := make([]discoverRow, len(devs))
	var wg sync.WaitGroup
	for i, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := onvif.Identify(ctx, d, creds, al)
			r := discoverRow{Address: d.From, XAddr: id.XAddr, XAddrs: d.XAddrs, Endpoint: d.Endpoint, Name: d.Name,
				Hardware: d.Hardware, NeedsAuth: id.NeedsAuth, Withheld: id.CredentialsWithheld, Error: id.Error}
			if id.Info != nil {
				r.Manufacturer, r.Model, r.Firmware, r.Serial, r.HardwareID = id.Info.Manufacturer, id.Info.Model,
					id.Info.FirmwareVersion, id.Info.SerialNumber, id.Info.HardwareID
			}
			rows[i] = r
		}()
	}
	wg.Wait()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
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
			fmt.Fprintf(stdout, "%s: %s\n", r.Address, r.Error)
		}
	}
	fmt.Fprintf(stdout, "%d camera(s) found\n", len(rows))
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
