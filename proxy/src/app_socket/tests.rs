#![allow(clippy::unwrap_used)]

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;

/// Our side (an `AppSocket`) and the app's side of one TCP connection.
async fn pair() -> (AppSocket, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (ours, _) = listener.accept().await.unwrap();
    (AppSocket::new(ours), app)
}

/// What the app can read now, without waiting for more.
async fn readable_now(app: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0_u8; 256];
    // Loopback delivers within the write; a short wait tells "nothing".
    while let Ok(Ok(n)) =
        tokio::time::timeout(std::time::Duration::from_millis(50), app.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

const SERVER_HELLO: &[u8] = &[22, 3, 3, 0, 1, 0xaa];
const TICKET: &[u8] = &[23, 3, 3, 0, 1, 0xbb];
const ANSWER: &[u8] = &[23, 3, 3, 0, 1, 0xcc];

#[tokio::test]
async fn the_ticket_waits_for_the_first_answer_and_goes_before_it() {
    let (mut ours, mut app) = pair().await;
    ours.write_all(SERVER_HELLO).await.unwrap();
    ours.flush().await.unwrap();
    assert_eq!(
        readable_now(&mut app).await,
        SERVER_HELLO,
        "the first flight goes at once"
    );
    ours.write_all(TICKET).await.unwrap();
    ours.flush().await.unwrap();
    assert_eq!(readable_now(&mut app).await, b"", "the ticket is held");
    ours.handshake_over();
    ours.flush().await.unwrap();
    assert_eq!(
        readable_now(&mut app).await,
        b"",
        "a flush does not send it"
    );
    ours.write_all(ANSWER).await.unwrap();
    assert_eq!(readable_now(&mut app).await, [TICKET, ANSWER].concat());
    assert!(ours.held.capacity() == 0, "no buffer kept");
}

#[tokio::test]
async fn a_tls_1_2_flight_after_the_first_is_not_held() {
    let (mut ours, mut app) = pair().await;
    ours.write_all(SERVER_HELLO).await.unwrap();
    // NewSessionTicket, ChangeCipherSpec, Finished: handshake records.
    let final_flight = [22, 3, 3, 0, 1, 0x04, 20, 3, 3, 0, 1, 1];
    ours.write_all(&final_flight).await.unwrap();
    assert_eq!(
        readable_now(&mut app).await,
        [SERVER_HELLO, &final_flight].concat()
    );
}

#[tokio::test]
async fn a_failed_handshake_releases_its_held_alert() {
    let (mut ours, mut app) = pair().await;
    ours.write_all(SERVER_HELLO).await.unwrap();
    let alert = [23, 3, 3, 0, 1, 0xdd];
    ours.write_all(&alert).await.unwrap();
    assert_eq!(readable_now(&mut app).await, SERVER_HELLO);
    std::future::poll_fn(|cx| ours.poll_release(cx))
        .await
        .unwrap();
    assert_eq!(readable_now(&mut app).await, alert);
}

#[tokio::test]
async fn shutdown_sends_what_is_held_first() {
    let (mut ours, mut app) = pair().await;
    ours.write_all(SERVER_HELLO).await.unwrap();
    ours.write_all(TICKET).await.unwrap();
    ours.shutdown().await.unwrap();
    let mut all = Vec::new();
    app.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, [SERVER_HELLO, TICKET].concat());
}
