package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/repo"
)

// newKeyCmd returns `pkgbuild key`.
func newKeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Create, export and rotate the repository signing key",
	}
	cmd.AddCommand(newKeyGenerateCmd(), newKeyExportCmd(), newKeyRotateCmd())
	return cmd
}

func newKeyGenerateCmd() *cobra.Command {
	var out, public, name, email string
	cmd := &cobra.Command{
		Use:   "generate --out FILE [--public FILE]",
		Short: "Generate an Ed25519 signing key",
		Long: `generate writes a new armored OpenPGP private key to --out (mode 0600,
never overwriting), encrypted with $APTFLEET_SIGNING_KEY_PASSPHRASE when set,
and its public key to --public: armored if the name ends in .asc, else a binary
keyring for apt's signed-by=.`,
		Example: `  pkgbuild key generate --out signing.asc --public repo.gpg`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pass := []byte(os.Getenv("APTFLEET_SIGNING_KEY_PASSPHRASE"))
			var b bytes.Buffer
			if err := repo.GenerateKey(&b, name, email, pass); err != nil {
				return err
			}
			s, err := repo.ParseSigner(b.Bytes(), pass)
			if err != nil {
				return err
			}
			if err := writeNew(out, b.Bytes(), 0o600); err != nil {
				return err
			}
			if public != "" {
				if err := writePublic(s, public); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s written to %s\n", s.Fingerprint(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "private key file to create (required)")
	cmd.Flags().StringVar(&public, "public", "", "public key file to write (.asc armored, else binary)")
	cmd.Flags().StringVar(&name, "name", "aptfleet repository", "user id name")
	cmd.Flags().StringVar(&email, "email", "apt@localhost", "user id email")
	cmd.MarkFlagRequired("out")
	return cmd
}

func newKeyExportCmd() *cobra.Command {
	var key, public string
	cmd := &cobra.Command{
		Use:     "export --key FILE --public FILE",
		Short:   "Write the public half of a signing key (for apt's signed-by=)",
		Example: `  pkgbuild key export --key signing.asc --public repo.gpg`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := repoFlags{key: key}
			s, err := f.signer()
			if err != nil {
				return err
			}
			return writePublic(s, public)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "private key file (default $APTFLEET_SIGNING_KEY_FILE)")
	cmd.Flags().StringVar(&public, "public", "", "public key file to write (.asc armored, else binary) (required)")
	cmd.MarkFlagRequired("public")
	return cmd
}

func writePublic(s *repo.Signer, file string) error {
	var b bytes.Buffer
	if err := s.WritePublicKey(&b, strings.HasSuffix(file, ".asc")); err != nil {
		return err
	}
	return os.WriteFile(file, b.Bytes(), 0o644)
}

// writeNew creates file with data, refusing to overwrite.
func writeNew(file string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; not overwriting a key", file)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(file)
		return err
	}
	return f.Close()
}

func newKeyRotateCmd() *cobra.Command {
	var (
		f      repoFlags
		newKey string
		finish bool
	)
	cmd := &cobra.Command{
		Use:   "rotate --repo URL --key OLD --new-key NEW [--finish]",
		Short: "Rotate the repository's signing key: sign with both keys, then (--finish) with the new one alone",
		Long: `rotate starts replacing the signing key --key with --new-key: it adds the new
key to the repository's trusted keys (keys/trusted.gpg) and signs every dist
again with both keys (one clearsigned InRelease carrying two signatures, two
signatures in Release.gpg). Hosts trusting either key keep updating; ship the
new key to them meanwhile (pkgbuild keyring build, published like any package).

--finish ends it: every dist is signed with the new key alone and the old key is
dropped from the trusted keys. Hosts that never got the new key then fail with
apt's NO_PUBKEY, and the old key can no longer change the repository. Both
steps can be run again. The passphrase of the new key is
$APTFLEET_NEW_SIGNING_KEY_PASSPHRASE, else $APTFLEET_SIGNING_KEY_PASSPHRASE.`,
		Example: `  pkgbuild key rotate --repo s3://my-bucket/apt --key old.asc --new-key new.asc
  pkgbuild key rotate --repo s3://my-bucket/apt --key old.asc --new-key new.asc --finish`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pass := os.Getenv("APTFLEET_NEW_SIGNING_KEY_PASSPHRASE")
			if pass == "" {
				pass = os.Getenv("APTFLEET_SIGNING_KEY_PASSPHRASE")
			}
			next, err := repo.LoadSigner(newKey, []byte(pass))
			if err != nil {
				return oneLine(fmt.Errorf("--new-key: %w", err))
			}
			r, err := f.open(cmd.Context(), true, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			rotate, verb := r.RotateKey, "signed with %s and %s: %s\n"
			if finish {
				rotate, verb = r.FinishRotation, "signed with %[2]s alone, %[1]s no longer trusted: %[3]s\n"
			}
			dists, err := rotate(cmd.Context(), next)
			if err != nil {
				return oneLine(fmt.Errorf("key rotate: %w", err))
			}
			fmt.Fprintf(cmd.OutOrStdout(), verb, r.Signer.Fingerprint(), next.Fingerprint(), strings.Join(dists, " "))
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&newKey, "new-key", "", "the new armored OpenPGP private key file (required)")
	cmd.Flags().BoolVar(&finish, "finish", false, "end the rotation: sign with the new key alone and stop trusting the old one")
	cmd.MarkFlagRequired("new-key")
	return cmd
}
