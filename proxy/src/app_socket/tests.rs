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

/// The next `count` bytes the app gets (what was sent, whenever it was).
async fn next_bytes(app: &mut TcpStream, count: usize) -> Vec<u8> {
    let mut got = vec![0_u8; count];
    app.read_exact(&mut got).await.unwrap();
    got
}

/// Everything else the app gets until we shut down, in order.
async fn the_rest(mut ours: AppSocket, app: &mut TcpStream) -> Vec<u8> {
    ours.shutdown().await.unwrap();
    let mut rest = Vec::new();
    app.read_to_end(&mut rest).await.unwrap();
    rest
}

const SERVER_HELLO: &[u8] = &[22, 3, 3, 0, 1, 0xaa];
const TICKET: &[u8] = &[23, 3, 3, 0, 1, 0xbb];
const ANSWER: &[u8] = &[23, 3, 3, 0, 1, 0xcc];

#[tokio::test]
async fn the_ticket_waits_for_the_first_answer_and_goes_before_it() {
    let (mut ours, mut app) = pair().await;
    ours.write_all(SERVER_HELLO).await.unwrap();
    ours.flush().await.unwrap();
    assert!(ours.held.is_empty(), "the first flight goes at once");
    assert_eq!(next_bytes(&mut app, SERVER_HELLO.len()).await, SERVER_HELLO);
    ours.write_all(TICKET).await.unwrap();
    ours.flush().await.unwrap();
    assert_eq!(ours.held, TICKET, "the ticket is held");
    ours.handshake_over();
    ours.flush().await.unwrap();
    assert_eq!(ours.held, TICKET, "a flush does not send it");
    ours.write_all(ANSWER).await.unwrap();
    assert!(ours.held.capacity() == 0, "no buffer kept");
    assert_eq!(
        the_rest(ours, &mut app).await,
        [TICKET, ANSWER].concat(),
        "the ticket went once, before the answer"
    );
}

#[tokio::test]
async fn a_tls_1_2_flight_after_the_first_is_not_held() {
    let (mut ours, mut app) = pair().await;
    ours.write_all(SERVER_HELLO).await.unwrap();
    // NewSessionTicket, ChangeCipherSpec, Finished: handshake records.
    let final_flight = [22, 3, 3, 0, 1, 0x04, 20, 3, 3, 0, 1, 1];
    ours.write_all(&final_flight).await.unwrap();
    assert!(ours.held.is_empty(), "nothing held");
    let sent = [SERVER_HELLO, &final_flight].concat();
    assert_eq!(next_bytes(&mut app, sent.len()).await, sent);
}

#[tokio::test]
async fn a_failed_handshake_releases_its_held_alert() {
    let (mut ours, mut app) = pair().await;
    ours.write_all(SERVER_HELLO).await.unwrap();
    let alert = [23, 3, 3, 0, 1, 0xdd];
    ours.write_all(&alert).await.unwrap();
    assert_eq!(ours.held, alert, "held like a ticket");
    std::future::poll_fn(|cx| ours.poll_release(cx))
        .await
        .unwrap();
    assert!(ours.held.is_empty(), "released");
    let sent = [SERVER_HELLO, &alert].concat();
    assert_eq!(next_bytes(&mut app, sent.len()).await, sent);
}

#[tokio::test]
async fn shutdown_sends_what_is_held_first() {
    let (mut ours, mut app) = pair().await;
    ours.write_all(SERVER_HELLO).await.unwrap();
    ours.write_all(TICKET).await.unwrap();
    assert_eq!(
        the_rest(ours, &mut app).await,
        [SERVER_HELLO, TICKET].concat()
    );
}
