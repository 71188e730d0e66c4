//! A headless Chromium for end-to-end tests of the pages, used as a phone's browser.
//!
//! [`ChromeDriver`] runs `chromedriver` on a free loopback port as the leader of its own process
//! group, like the other servers (see the crate doc): the Chromium it launches is in that group,
//! so dropping the driver, or the watchdog when the test process dies, kills both. [`Browser`]
//! opens one WebDriver session on its own driver through the fantoccini client: Debian's
//! `chromium`, headless, emulating a phone ([`PHONE`]: 390×844 CSS pixels at device pixel
//! ratio 2, touch, a phone's user agent), with a fresh profile in the driver's temp dir.
//!
//! Screenshots of the whole page are test artefacts: `<artefacts>/browser/<test>-<NN>-<step>.png`,
//! where `<artefacts>` is `$SAOMA_ARTEFACTS_DIR` when set, else `test-artefacts/` in the cargo
//! target dir (`target/test-artefacts/browser/`). A test's files from an earlier run are removed
//! when its browser starts.
//!
//! Missing `chromium` or `chromedriver` (Debian packages `chromium`, `chromium-driver`):
//! [`Browser::start_or_skip`] prints the loud `SKIPPED:` notice and returns `None`, unless
//! `SAOMA_REQUIRE_SERVICES=1`, which makes it a panic. At most two browsers run at once in a
//! test process; a third test waits for its turn. Every step is bounded: 30 s to start the
//! driver and the browser, 20 s to load a page, 10 s for a script or a wait.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use fantoccini::elements::Element;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde::Deserialize;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::process::{self, Supervisor, STARTUP_TIMEOUT};

/// The phone the browser emulates: width and height of its viewport in CSS pixels.
pub const PHONE: (u32, u32) = (390, 844);
/// Device pixels per CSS pixel of the emulated phone (screenshots are twice [`PHONE`]).
const PIXEL_RATIO: f64 = 2.0;
const PHONE_USER_AGENT: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
                                (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36";
/// Longest wait for a page to load.
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for a script, an element, or a WebDriver call outside a page load.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many browsers run at once in one test process (the others wait for a turn):
/// each Chromium is several processes, and test machines have few cores.
const MAX_BROWSERS: usize = 2;

const EXTRA_DIRS: [&str; 2] = ["/usr/lib/chromium", "/usr/local/bin"];

fn chromium_program() -> Option<PathBuf> {
    process::find_program("chromium", &EXTRA_DIRS)
}

fn chromedriver_program() -> Option<PathBuf> {
    process::find_program("chromedriver", &EXTRA_DIRS)
}

/// Whether both `chromium` and `chromedriver` are installed.
pub fn chromium_installed() -> bool {
    chromium_program().is_some() && chromedriver_program().is_some()
}

/// `chromedriver` owned by a test, killed with the browsers it started on drop.
pub struct ChromeDriver {
    supervisor: Supervisor,
    port: u16,
    dir: TempDir,
}

impl ChromeDriver {
    /// Starts `chromedriver` on a free loopback port; blocks for at most 30 s.
    pub fn start() -> Result<Self> {
        let bin = chromedriver_program().context("chromedriver not found on PATH")?;
        let dir = tempfile::Builder::new()
            .prefix("saoma-chromedriver-")
            .tempdir()?;
        let supervisor = Supervisor::new(Some(dir.path()))?;
        let mut driver = Self {
            supervisor,
            port: 0,
            dir,
        };
        let mut attempt = 1;
        loop {
            driver.port = crate::free_port();
            match driver.launch(&bin) {
                Ok(()) => return Ok(driver),
                Err(_)
                    if attempt < 5
                        && process::port_was_taken(&driver.supervisor.log_since_spawn()) =>
                {
                    attempt += 1
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `http://127.0.0.1:PORT`, the WebDriver endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the driver logged.
    pub fn log(&self) -> String {
        self.supervisor.log_since_spawn()
    }

    fn launch(&mut self, bin: &Path) -> Result<()> {
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--port={}", self.port))
            .arg("--allowed-ips=127.0.0.1")
            .current_dir(self.dir.path());
        self.supervisor
            .spawn(&mut cmd, &self.dir.path().join("chromedriver.log"))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let banner = format!("started successfully on port {}", self.port);
        self.supervisor
            .wait_until("chromedriver", STARTUP_TIMEOUT, |s| {
                s.log_since_spawn().contains(&banner)
                    && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            })
    }
}

/// The browser's layout of the current page, in CSS pixels.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Layout {
    /// `document.documentElement.scrollWidth`: wider than `inner_width` means sideways scrolling.
    pub scroll_width: u64,
    /// `window.innerWidth`, the viewport's width.
    pub inner_width: u64,
    /// `document.documentElement.scrollHeight`.
    pub scroll_height: u64,
}

/// One message of the browser's console (`SEVERE`, `WARNING`, `INFO`, …).
#[derive(Debug, Clone, Deserialize)]
pub struct ConsoleEntry {
    pub level: String,
    pub message: String,
}

/// A headless Chromium session on a phone-sized viewport, with its own `chromedriver`.
pub struct Browser {
    client: Client,
    session: String,
    test: String,
    shots: u32,
    artefacts: PathBuf,
    http: reqwest::Client,
    driver: ChromeDriver,
    /// Released after the driver and its browser are gone.
    _turn: OwnedSemaphorePermit,
}

impl Browser {
    /// [`start`](Self::start), or `None` after a loud notice when `chromium` or `chromedriver`
    /// is missing (a panic instead when `SAOMA_REQUIRE_SERVICES=1`). Panics when they are
    /// installed but do not start.
    pub async fn start_or_skip(test: &str) -> Option<Self> {
        if !chromium_installed() {
            return crate::skip(
                "chromium or chromedriver (Debian packages chromium, chromium-driver)",
            );
        }
        Some(
            Self::start(test)
                .await
                .unwrap_or_else(|e| panic!("starting headless chromium: {e:#}")),
        )
    }

    /// Starts a driver and a headless Chromium emulating [`PHONE`]; `test` names the
    /// screenshots.
    pub async fn start(test: &str) -> Result<Self> {
        let chromium = chromium_program().context("chromium not found on PATH")?;
        static TURNS: OnceLock<Arc<Semaphore>> = OnceLock::new();
        let turn = TURNS
            .get_or_init(|| Arc::new(Semaphore::new(MAX_BROWSERS)))
            .clone()
            .acquire_owned()
            .await?;
        let driver = tokio::task::spawn_blocking(ChromeDriver::start)
            .await
            .context("chromedriver start-up task")??;
        let profile = driver.dir.path().join("profile");
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-extensions",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--lang=zh-CN",
                    format!("--window-size={},{}", PHONE.0, PHONE.1),
                    format!("--user-data-dir={}", profile.display()),
                ],
                "mobileEmulation": {
                    "deviceMetrics": {
                        "width": PHONE.0,
                        "height": PHONE.1,
                        "pixelRatio": PIXEL_RATIO,
                        "mobile": true,
                        "touch": true,
                    },
                    "userAgent": PHONE_USER_AGENT,
                },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are an object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut builder = ClientBuilder::new(connector);
        builder.capabilities(capabilities);
        let url = driver.url();
        let client = match tokio::time::timeout(STARTUP_TIMEOUT, builder.connect(&url)).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => bail!(
                "opening a chromium session: {e}; driver log:\n{}",
                driver.log()
            ),
            Err(_) => bail!(
                "chromium did not start within {STARTUP_TIMEOUT:?}; driver log:\n{}",
                driver.log()
            ),
        };
        let session = client
            .session_id()
            .await?
            .context("chromedriver gave no session id")?;
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(STEP_TIMEOUT),
                Some(PAGE_LOAD_TIMEOUT),
                Some(Duration::ZERO),
            ))
            .await?;
        let artefacts = artefacts_dir().join("browser");
        std::fs::create_dir_all(&artefacts)
            .with_context(|| format!("creating {}", artefacts.display()))?;
        remove_old_screenshots(&artefacts, test);
        Ok(Self {
            client,
            session,
            test: test.to_string(),
            shots: 0,
            artefacts,
            http: reqwest::Client::builder().timeout(STEP_TIMEOUT).build()?,
            driver,
            _turn: turn,
        })
    }

    /// The fantoccini client, for what the helpers below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where this browser's screenshots go.
    pub fn artefacts(&self) -> &Path {
        &self.artefacts
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn open(&self, url: &str) -> Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))
    }

    /// The first element matching the CSS selector `css`, waiting up to 10 s for it.
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        self.client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("waiting for {css:?}"))
    }

    /// The first element matching `css`, now.
    pub async fn find(&self, css: &str) -> Result<Element> {
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("finding {css:?}"))
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> Result<usize> {
        Ok(self.client.find_all(Locator::Css(css)).await?.len())
    }

    /// The rendered text of the first element matching `css` (as a person sees it: hidden
    /// elements have none).
    pub async fn text(&self, css: &str) -> Result<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// The rendered text of the whole page.
    pub async fn page_text(&self) -> Result<String> {
        self.text("body").await
    }

    /// Clicks the first element matching `css`, as a tap would.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.find(css)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking {css:?}"))
    }

    /// Clicks the first element matching `css` — a link or a submit button — and waits until
    /// the next page has loaded (a click returns as soon as the navigation starts).
    pub async fn follow(&self, css: &str) -> Result<()> {
        self.eval("window.saomaPreviousPage = true; return null;")
            .await?;
        self.click(css).await?;
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            let loaded = self
                .eval(
                    "return window.saomaPreviousPage === undefined \
                     && document.readyState === 'complete';",
                )
                .await
                // While the old document unloads the script may find no page to run in.
                .unwrap_or(Value::Bool(false));
            if loaded == Value::Bool(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(anyhow!("clicking {css:?} loaded no new page"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the first element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        self.find(css)
            .await?
            .send_keys(text)
            .await
            .with_context(|| format!("typing into {css:?}"))
    }

    /// Runs `script` (a function body; `return` gives its value) in the page.
    pub async fn eval(&self, script: &str) -> Result<Value> {
        self.client
            .execute(script, vec![])
            .await
            .with_context(|| format!("running {script:?}"))
    }

    /// The HTTP status of the current page's document (Navigation Timing `responseStatus`).
    pub async fn status(&self) -> Result<u16> {
        let status = self
            .eval("return performance.getEntriesByType('navigation')[0].responseStatus;")
            .await?;
        status
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| anyhow!("no response status: {status}"))
    }

    /// The current page's width, viewport width and height.
    pub async fn layout(&self) -> Result<Layout> {
        let value = self
            .eval(
                "const d = document.documentElement; \
                 return {scroll_width: d.scrollWidth, inner_width: window.innerWidth, \
                         scroll_height: d.scrollHeight};",
            )
            .await?;
        Ok(serde_json::from_value(value)?)
    }

    /// Every URL the current page loaded: the document itself and every resource (Resource
    /// Timing), in the order they were fetched.
    pub async fn loaded_urls(&self) -> Result<Vec<String>> {
        let value = self
            .eval(
                "return performance.getEntriesByType('navigation') \
                    .concat(performance.getEntriesByType('resource')).map(e => e.name);",
            )
            .await?;
        Ok(serde_json::from_value(value)?)
    }

    /// The console messages since the last call (the browser log that chromedriver keeps).
    pub async fn console(&self) -> Result<Vec<ConsoleEntry>> {
        let reply: Value = self
            .driver_command("se/log", json!({ "type": "browser" }))
            .await?;
        Ok(serde_json::from_value(reply)?)
    }

    /// Saves a screenshot of the whole page, not only the viewport, as
    /// `<test>-<NN>-<step>.png` and returns its path.
    pub async fn screenshot(&mut self, step: &str) -> Result<PathBuf> {
        let reply = self
            .driver_command(
                "goog/cdp/execute",
                json!({
                    "cmd": "Page.captureScreenshot",
                    "params": { "format": "png", "captureBeyondViewport": true },
                }),
            )
            .await?;
        let data = reply["data"]
            .as_str()
            .ok_or_else(|| anyhow!("no screenshot in {reply}"))?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        self.shots += 1;
        let path = self
            .artefacts
            .join(format!("{}-{:02}-{step}.png", self.test, self.shots));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Ends the session and stops the driver (dropping does the same, less politely).
    pub async fn close(self) -> Result<()> {
        let closed = tokio::time::timeout(STEP_TIMEOUT, self.client.clone().close()).await;
        drop(self);
        closed
            .map_err(|_| anyhow!("closing the session took over {STEP_TIMEOUT:?}"))?
            .map_err(Into::into)
    }

    /// A chromedriver command that fantoccini does not model: `POST /session/{id}/{path}`.
    async fn driver_command(&self, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}/session/{}/{path}", self.driver.url(), self.session);
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let mut reply: Value = response.json().await?;
        if !status.is_success() {
            bail!("POST {url}: {status}: {reply}");
        }
        Ok(reply["value"].take())
    }
}

/// Where test artefacts go: `$SAOMA_ARTEFACTS_DIR`, else `test-artefacts/` in the cargo
/// target dir of the running test binary (`<target>/<profile>/deps/<binary>`).
pub fn artefacts_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SAOMA_ARTEFACTS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = std::env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        (deps.file_name()? == "deps").then(|| deps.parent()?.parent().map(Path::to_path_buf))?
    });
    target
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("test-artefacts")
}

fn remove_old_screenshots(dir: &Path, test: &str) {
    let prefix = format!("{test}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".png") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
