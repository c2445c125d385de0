package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"
)

// Size limits of the files Velo reads.
const (
	// MaxConfigBytes bounds a config or mask file: real ones are a few
	// KiB; a huge one would cost many times its size to decode.
	MaxConfigBytes = 4 << 20
	// MaxSecretBytes bounds a secret file: a password, a credential line
	// or a PEM key (an 8192-bit RSA key is under 7 KiB).
	MaxSecretBytes = 16 << 10
)

// ReadOptions says what Read accepts besides a regular file.
type ReadOptions struct {
	// MaxBytes is the largest size accepted (required).
	MaxBytes int64
	// NoLinks refuses a symbolic link as the last element of the path.
	NoLinks bool
	// OwnerOnly refuses a file whose mode gives its group or others any
	// access.
	OwnerOnly bool
	// Owners, when not nil, are the only owners (uids) accepted.
	Owners []int
}

// Read reads a regular file, checked on the opened descriptor (so the
// checks and the read see the same file). The open never blocks: a FIFO
// or a device is refused, not waited on.
func Read(path string, o ReadOptions) ([]byte, error) {
	flags := os.O_RDONLY | syscall.O_NONBLOCK
	if o.NoLinks {
		flags |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		if o.NoLinks && errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s is a symbolic link: name the file itself", path)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := check(path, st, o); err != nil {
		return nil, err
	}
	// The size is checked again while reading: a file may grow, and some
	// (in /proc) report none.
	data, err := io.ReadAll(io.LimitReader(f, o.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > o.MaxBytes {
		return nil, fmt.Errorf("%s is larger than the limit of %d bytes", path, o.MaxBytes)
	}
	return data, nil
}

// ReadFile reads a regular file of at most max bytes (a link is followed;
// the file it names is checked).
func ReadFile(path string, max int64) ([]byte, error) {
	return Read(path, ReadOptions{MaxBytes: max})
}

func check(path string, st fs.FileInfo, o ReadOptions) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is %s, not a regular file", path, kind(st.Mode()))
	}
	if st.Size() > o.MaxBytes {
		return fmt.Errorf("%s is %d bytes, over the limit of %d", path, st.Size(), o.MaxBytes)
	}
	if o.OwnerOnly && st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by group or others (mode %v); chmod 600", path, st.Mode().Perm())
	}
	if o.Owners != nil {
		uid := -1
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid = int(sys.Uid)
		}
		if !slices.Contains(o.Owners, uid) {
			return fmt.Errorf("%s is owned by uid %d, not by %s", path, uid, ownersText(o.Owners))
		}
	}
	return nil
}

func ownersText(uids []int) string {
	s := ""
	for i, u := range uids {
		if i > 0 {
			s += " or "
		}
		s += fmt.Sprintf("uid %d", u)
	}
	return s
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return "a special file (mode " + m.String() + ")"
}
