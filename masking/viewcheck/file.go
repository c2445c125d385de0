package viewcheck

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// fileFormat names the format in a reference file's header.
const (
	fileFormat  = "velo-view-reference"
	fileVersion = 1
	headerTag   = "# " + fileFormat + " "
)

// fileHeader is the JSON in the file's comment line.
type fileHeader struct {
	Format   string    `json:"format"`
	Version  int       `json:"version"`
	Camera   string    `json:"camera"`
	Preset   string    `json:"preset"`
	Width    int       `json:"width"`
	Height   int       `json:"height"`
	Night    bool      `json:"night"`
	Captured time.Time `json:"captured"`
	Position *Position `json:"position"`
	Basis    Basis     `json:"basis"`
	// Payload is the SHA256 of the pixels (luma then exclusion mask).
	Payload string `json:"payload_sha256"`
}

// Encode returns the reference's file: a binary PGM (P5) Width wide and
// 2×Height high, the luma above the exclusion mask (255 = masked), with
// a JSON header in a comment line. Any image viewer shows it.
func (r *Reference) Encode() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	payload := append(append(make([]byte, 0, 2*len(r.Luma)), r.Luma...), r.Exclude...)
	sum := sha256.Sum256(payload)
	hdr, err := json.Marshal(fileHeader{
		Format: fileFormat, Version: fileVersion, Camera: r.Camera, Preset: r.Preset,
		Width: r.Width, Height: r.Height, Night: r.Night, Captured: r.Captured.UTC(),
		Position: r.Position, Basis: r.Basis, Payload: hex.EncodeToString(sum[:]),
	})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "P5\n%s%s\n%d %d\n255\n", headerTag, hdr, r.Width, 2*r.Height)
	b.Write(payload)
	return b.Bytes(), nil
}

// SHA256 is the hex SHA256 of the reference's file bytes (for the audit
// log and the dossier); "" if it cannot be encoded.
func (r *Reference) SHA256() string {
	b, err := r.Encode()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Save writes the reference to path, mode 0644, atomically (a temporary
// file in the same folder renamed over path).
func (r *Reference) Save(path string) error {
	b, err := r.Encode()
	if err != nil {
		return fmt.Errorf("save view reference %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save view reference %s: %w", path, err)
	}
	fail := func(err error) error {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save view reference %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save view reference %s: %w", path, err)
	}
	return nil
}

// Load reads a reference file written by Save; a file that is not one,
// or whose pixels do not match its header's checksum, is refused.
func Load(path string) (*Reference, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load view reference %s: %w", path, err)
	}
	r, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("load view reference %s: %w", path, err)
	}
	return r, nil
}

// Decode parses a reference file's bytes (see Encode).
func Decode(b []byte) (*Reference, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	line := func() string {
		s, _ := br.ReadString('\n')
		return strings.TrimSuffix(s, "\n")
	}
	if line() != "P5" {
		return nil, errors.New("not a view reference (no PGM P5 magic)")
	}
	c := line()
	if !strings.HasPrefix(c, headerTag) {
		return nil, errors.New("not a view reference (no " + fileFormat + " header)")
	}
	var hdr fileHeader
	if err := json.Unmarshal([]byte(strings.TrimPrefix(c, headerTag)), &hdr); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if hdr.Format != fileFormat || hdr.Version != fileVersion {
		return nil, fmt.Errorf("format %q version %d not supported", hdr.Format, hdr.Version)
	}
	if dims, maxval := line(), line(); dims != fmt.Sprintf("%d %d", hdr.Width, 2*hdr.Height) || maxval != "255" {
		return nil, fmt.Errorf("PGM size %q / maxval %q do not match the header", dims, maxval)
	}
	payload, err := io.ReadAll(br)
	if err != nil {
		return nil, err
	}
	n := hdr.Width * hdr.Height
	if hdr.Width <= 0 || hdr.Height <= 0 || len(payload) != 2*n {
		return nil, fmt.Errorf("%d bytes of pixels, want %s", len(payload), strconv.Itoa(2*n))
	}
	if sum := sha256.Sum256(payload); hex.EncodeToString(sum[:]) != hdr.Payload {
		return nil, errors.New("pixels do not match the header's checksum (corrupted)")
	}
	r := &Reference{
		Camera: hdr.Camera, Preset: hdr.Preset, Width: hdr.Width, Height: hdr.Height,
		Luma: payload[:n:n], Exclude: payload[n:], Night: hdr.Night, Captured: hdr.Captured,
		Position: hdr.Position, Basis: hdr.Basis,
	}
	return r, r.check()
}

// check refuses a reference the checks cannot use.
func (r *Reference) check() error {
	switch {
	case r == nil:
		return errors.New("no reference")
	case r.Width < tileSize || r.Height < tileSize:
		return fmt.Errorf("size %dx%d below %dx%d", r.Width, r.Height, tileSize, tileSize)
	case len(r.Luma) != r.Width*r.Height || len(r.Exclude) != r.Width*r.Height:
		return fmt.Errorf("luma or exclusion not %dx%d", r.Width, r.Height)
	case r.Basis.Radius <= 0 || math.IsNaN(r.Basis.Radius):
		return errors.New("basis radius missing")
	}
	for i, e := range r.Exclude {
		if e != 0 && e != 255 {
			return fmt.Errorf("exclusion mask value %d at pixel %d (want 0 or 255)", e, i)
		}
	}
	return nil
}
