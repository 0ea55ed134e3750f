package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// usageErrorsExit2 makes every usage error of the command tree under root
// exit with status 2, as the help texts and the README say: a flag that is
// unknown or has a bad value, a wrong number of arguments, a required flag
// that is missing, an unknown subcommand. The error is cobra's message and
// a pointer to the command's --help. newRoot applies it to the whole tree
// once built, so that every command gets it, future ones too.
//
// Cobra returns the last two as plain errors from Execute, so this checks
// them itself before a command runs: the required flags (and flag groups)
// in a PreRunE, and the subcommand in the Args of each command that only
// groups others, which it makes runnable to that end (with no argument it
// prints its help, as before).
//
// A group's flags are parsed before its Args: a mistyped subcommand
// followed by one of that subcommand's flags (`runs show X --dev`) is
// named as the unknown command, not as an unknown flag of the group.
func usageErrorsExit2(root *cobra.Command) {
	groups := map[*cobra.Command]bool{}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		if args := cmd.Flags().Args(); groups[cmd] && len(args) > 0 {
			// The words before the flag pflag stopped at.
			return usageError(cmd, unknownSubcommand(cmd, args))
		}
		return usageError(cmd, err)
	})
	var apply func(cmd *cobra.Command)
	apply = func(cmd *cobra.Command) {
		if cmd.HasSubCommands() && !cmd.Runnable() {
			groups[cmd] = true
			cmd.Args = unknownSubcommand
			cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
		if validateArgs := cmd.Args; validateArgs != nil {
			cmd.Args = func(cmd *cobra.Command, args []string) error {
				if err := validateArgs(cmd, args); err != nil {
					return usageError(cmd, err)
				}
				return nil
			}
		}
		if cmd.Runnable() {
			preRunE, preRun := cmd.PreRunE, cmd.PreRun
			cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
				if err := cmd.ValidateRequiredFlags(); err != nil {
					return usageError(cmd, err)
				}
				if err := cmd.ValidateFlagGroups(); err != nil {
					return usageError(cmd, err)
				}
				switch {
				case preRunE != nil:
					return preRunE(cmd, args)
				case preRun != nil:
					preRun(cmd, args)
				}
				return nil
			}
		}
		for _, sub := range cmd.Commands() {
			apply(sub)
		}
	}
	apply(root)
}

// usageError is err as a usage error of cmd: exit status 2, with a pointer
// to cmd's help. An error that already carries an exit status keeps it.
func usageError(cmd *cobra.Command, err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: 2, err: fmt.Errorf("%w (run '%s --help' for usage)", err, cmd.CommandPath())}
}

// unknownSubcommand is the Args of a command that only groups others: an
// argument is a subcommand it does not have. The message is cobra's, with
// its suggestions.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if !cmd.DisableSuggestions {
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		if suggestions := cmd.SuggestionsFor(args[0]); len(suggestions) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(suggestions, "\n\t") + "\n"
		}
	}
	return errors.New(msg)
}
