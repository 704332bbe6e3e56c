package e2e

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

func TestSignIn(t *testing.T) {
	s := startServer(t, "")
	b := newBrowser(t)
	b.do(t,
		chromedp.Navigate(s.url+"/"),
		chromedp.WaitVisible(css(`[data-testid=signin-form]`)),
		chromedp.SendKeys(css(`[data-testid=signin-token]`), "not-a-token"),
		chromedp.Click(css(`[data-testid=signin-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=signin-error]`)),
	)
	require.Contains(t, b.text(t, `[data-testid=signin-error]`), "the token is not valid")

	// The right token, and the organization left at "default", which this
	// server does not have: the server's message.
	b.do(t,
		setValue(`[data-testid=signin-token]`, readToken),
		chromedp.Click(css(`[data-testid=signin-submit]`)),
	)
	b.waitFor(t, `document.querySelector('[data-testid=signin-error]').textContent.includes('organization "default" not found')`, 5*time.Second)
	b.screenshot(t, "signin")

	b.signIn(t, s)
	require.Equal(t, "organization acme", b.text(t, `[data-testid=session-org]`))
	require.Contains(t, eval[string](t, b, `sessionStorage.getItem('tidemark.session')`), readToken)
	require.Equal(t, "null", eval[string](t, b, `String(localStorage.getItem('tidemark.session'))`), "not kept beyond the tab")

	// Signing out forgets the token.
	b.do(t,
		chromedp.Click(css(`[data-testid=signout]`)),
		chromedp.WaitVisible(css(`[data-testid=signin-form]`)),
	)
	require.Equal(t, "null", eval[string](t, b, `String(sessionStorage.getItem('tidemark.session'))`))
	b.check(t, s.url)
}
