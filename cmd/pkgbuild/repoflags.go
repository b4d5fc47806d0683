package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/storeurl"
)

// repoFlags are the flags every repository command takes.
type repoFlags struct {
	url       string
	endpoint  string
	region    string
	pathStyle bool
	key       string // private signing key file
	keyring   string // public keyring file (read-only commands)
	origin    string // Release Origin (signing commands)
	label     string // Release Label (signing commands)
	validFor  time.Duration
	validCmd  *cobra.Command // has --valid-for: a command that writes Release files
	timeout   time.Duration  // per S3 request, without progress
	deadline  time.Duration  // for the whole command
}

// errDeadline is the cause of a command's context ending at --deadline.
type errDeadline struct{ d time.Duration }

func (e errDeadline) Error() string {
	return fmt.Sprintf("the command's deadline of %s passed (--deadline)", e.d)
}

// registerValidFor adds --valid-for to a command that writes Release files.
func (f *repoFlags) registerValidFor(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&f.validFor, "valid-for", 0,
		"sign the Release valid for this long (Valid-Until = Date + DURATION, e.g. 168h); 0 drops Valid-Until (default: the dist's current period, none for a new dist)")
	f.validCmd = cmd
}

// applyValidFor sets r's validity period from --valid-for, when given.
func (f *repoFlags) applyValidFor(r *repo.Repo) error {
	if f.validCmd == nil || !f.validCmd.Flags().Changed("valid-for") {
		return nil
	}
	switch {
	case f.validFor < 0:
		return fmt.Errorf("--valid-for %s: must not be negative", f.validFor)
	case f.validFor == 0:
		r.Config.ValidFor = -1 // no Valid-Until
	case f.validFor < time.Minute:
		return fmt.Errorf("--valid-for %s: shorter than a minute; clients would refuse the dist almost at once", f.validFor)
	default:
		r.Config.ValidFor = f.validFor
	}
	return nil
}

func (f *repoFlags) register(cmd *cobra.Command, signing bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "repo", "", "repository: s3://BUCKET/PREFIX, file:///PATH or a directory (required)")
	fl.StringVar(&f.endpoint, "endpoint", "", "S3-compatible server base URL (default: AWS_ENDPOINT_URL_S3, else AWS)")
	fl.StringVar(&f.region, "region", "", "S3 region (default: the AWS SDK's, else us-east-1)")
	fl.BoolVar(&f.pathStyle, "path-style", false, "address the bucket path-style (implied for IP and localhost endpoints)")
	fl.StringVar(&f.key, "key", "", "armored OpenPGP private key file (default $APTFLEET_SIGNING_KEY_FILE); passphrase from $APTFLEET_SIGNING_KEY_PASSPHRASE")
	if signing {
		fl.StringVar(&f.origin, "origin", "", "Origin field of the Release files this writes (default: the dist's, else aptfleet)")
		fl.StringVar(&f.label, "label", "", "Label field of the Release files this writes (default: the dist's, else aptfleet)")
	}
	if !signing {
		fl.StringVar(&f.keyring, "keyring", "", "public keyring to check signatures with (default: the public half of --key)")
	}
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "fail an S3 request that sends or receives nothing for this long")
	fl.DurationVar(&f.deadline, "deadline", 30*time.Minute, "give up on the whole command after this long")
	cmd.MarkFlagRequired("repo")
	// The deadline covers everything the command does, from here on.
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if f.timeout <= 0 || f.deadline <= 0 {
			return fmt.Errorf("--timeout %s, --deadline %s: both must be positive", f.timeout, f.deadline)
		}
		ctx, cancel := context.WithTimeoutCause(cmd.Context(), f.deadline, errDeadline{f.deadline})
		cmd.SetContext(ctx)
		cmd.PostRun = func(*cobra.Command, []string) { cancel() }
		return nil
	}
}

// signer loads the signing key named by --key or the environment.
func (f *repoFlags) signer() (*repo.Signer, error) {
	file := f.key
	if file == "" {
		file = os.Getenv("APTFLEET_SIGNING_KEY_FILE")
	}
	if file == "" {
		return nil, errors.New("no signing key: pass --key FILE or set APTFLEET_SIGNING_KEY_FILE")
	}
	return repo.LoadSigner(file, []byte(os.Getenv("APTFLEET_SIGNING_KEY_PASSPHRASE")))
}

// open returns the repository; signing commands get a Signer, the others
// a Keyring (from --keyring, else the public half of the signing key).
func (f *repoFlags) open(ctx context.Context, signing bool, stderr io.Writer) (*repo.Repo, error) {
	r := &repo.Repo{Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	switch {
	case signing:
		s, err := f.signer()
		if err != nil {
			return nil, err
		}
		r.Signer = s
		r.Config.Origin, r.Config.Label = f.origin, f.label
		if err := f.applyValidFor(r); err != nil {
			return nil, err
		}
	case f.keyring != "":
		k, err := repo.LoadKeyring(f.keyring)
		if err != nil {
			return nil, err
		}
		r.Keyring = k
	default:
		s, err := f.signer()
		if err != nil {
			return nil, fmt.Errorf("%w (or --keyring FILE to check signatures with)", err)
		}
		r.Keyring = s.Keyring()
	}
	st, err := storeurl.Open(ctx, f.url, storeurl.Options{Endpoint: f.endpoint, Region: f.region, PathStyle: f.pathStyle, Timeout: f.timeout})
	if err != nil {
		return nil, err
	}
	r.Store = withProgress(st, stderr)
	return r, nil
}

// parseRefs parses NAME=VERSION arguments.
func parseRefs(args []string) ([]repo.Ref, error) {
	var refs []repo.Ref
	for _, a := range args {
		ref, err := repo.ParseRef(a)
		if err != nil {
			return nil, err
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// oneLine keeps an error message on one line.
func oneLine(err error) error {
	if err == nil || !strings.ContainsAny(err.Error(), "\r\n") {
		return err
	}
	return errors.New(strings.Join(strings.Fields(err.Error()), " "))
}

// progressStore prints upload progress of large objects when stderr is a
// terminal; in CI logs it stays quiet.
type progressStore struct {
	repo.Store
	w io.Writer
}

func withProgress(s repo.Store, stderr io.Writer) repo.Store {
	f, ok := stderr.(*os.File)
	if !ok {
		return s
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return s
	}
	return &progressStore{Store: s, w: stderr}
}

func (p *progressStore) Put(ctx context.Context, key string, body io.Reader, size int64, opts repo.PutOptions) (repo.Object, error) {
	if size < 1<<20 {
		return p.Store.Put(ctx, key, body, size, opts)
	}
	pr := &progressReader{r: body, size: size, key: key, w: p.w}
	o, err := p.Store.Put(ctx, key, pr, size, opts)
	fmt.Fprintf(p.w, "\r\033[K")
	return o, err
}

type progressReader struct {
	r          io.Reader
	n, size    int64
	key        string
	w          io.Writer
	lastPctOut int64
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.n += int64(n)
	if pct := r.n * 100 / r.size; pct != r.lastPctOut {
		r.lastPctOut = pct
		fmt.Fprintf(r.w, "\r\033[Kupload %s %3d%%", r.key, pct)
	}
	return n, err
}

// Seek lets a store rewind the body for a retry.
func (r *progressReader) Seek(off int64, whence int) (int64, error) {
	s, ok := r.r.(io.Seeker)
	if !ok {
		return 0, errors.New("body is not seekable")
	}
	n, err := s.Seek(off, whence)
	if err == nil {
		r.n = n
	}
	return n, err
}
