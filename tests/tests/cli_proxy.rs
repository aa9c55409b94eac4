//! `hush --proxy` and `HUSH_PROXY`: a malformed URL is refused up front, and a proxy that is
//! down or cannot carry UDP makes the command fail naming the proxy, never connect directly.

use hush_tests::cli::{HushHome, RelayProcess};
use hush_tests::socks5::{ProxyMode, Socks5Server};

#[test]
fn malformed_proxy_urls_are_rejected_with_the_expected_form() {
    let mut home = HushHome::new();
    for url in [
        "127.0.0.1:1080",
        "socks5://host",
        "socks4://h:1",
        "socks5://u@h:1",
    ] {
        let run = home.hush(&["--proxy", url, "contacts"]);
        assert!(!run.status.success(), "{url}");
        assert!(
            run.stderr.contains("invalid proxy URL"),
            "{url}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("socks5://"), "{url}: {}", run.stderr);
    }
    home.set_env("HUSH_PROXY", "http://proxy:8080");
    let run = home.hush(&["contacts"]);
    assert!(!run.status.success());
    assert!(run.stderr.contains("invalid proxy URL"), "{}", run.stderr);
}

#[test]
fn a_proxy_that_is_down_or_refuses_udp_fails_the_command_naming_it() {
    let relay = RelayProcess::start();
    let mut home = HushHome::new();
    home.init("alice", &relay.address);

    // A loopback port nothing listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = closed.local_addr().unwrap();
    drop(closed);
    let url = format!("socks5://{down}");
    let run = home
        .hush(&["--proxy", &url, "invite", "--as", "bob"])
        .fails();
    assert!(
        run.stderr
            .contains(&format!("cannot reach the SOCKS5 proxy {down}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did not connect directly"),
        "{}",
        run.stderr
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(Socks5Server::start(ProxyMode {
        refuse_udp: true,
        ..ProxyMode::default()
    }));
    home.set_env("HUSH_PROXY", &proxy.url());
    let run = home.hush(&["invite", "--as", "bob"]).fails();
    let want = format!("the SOCKS5 proxy {} refused UDP ASSOCIATE", proxy.addr());
    assert!(run.stderr.contains(&want), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("use a proxy that supports UDP, or a VPN"),
        "{}",
        run.stderr
    );
    // Without the proxy the same command works: the relay was fine all along.
    home.unset_env("HUSH_PROXY");
    home.hush(&["invite", "--as", "bob"]).ok();
}
