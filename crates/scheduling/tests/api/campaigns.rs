use caravan_proto::{
    scheduling::v1::{
        Campaign, CreateCampaignRequest, GetCampaignRequest, ListCampaignsRequest, UpdateCampaignRequest,
    },
    r#type::v1::{Date, LocalizedText},
};
use caravan_testkit::violated_fields;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::spawn_app;

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn nianhuo() -> Campaign {
    Campaign {
        title: Some(LocalizedText {
            zh_cn: "2022全国网上年货节".into(),
            en: "2022 National Nianhuo Festival".into(),
            ..Default::default()
        }),
        organiser: "MOFCOM".into(),
        start_date: date(2022, 1, 10),
        end_date: date(2022, 2, 7),
        time_zone: "Asia/Shanghai".into(),
        ..Default::default()
    }
}

fn create(id: &str, campaign: Campaign) -> CreateCampaignRequest {
    CreateCampaignRequest { campaign: Some(campaign), campaign_id: id.into(), request_id: String::new() }
}

#[tokio::test]
async fn the_nianhuo_festival_is_a_campaign_that_reads_back() {
    let mut app = spawn_app().await;
    let created = app.client.create_campaign(create("nianhuo-2022", nianhuo())).await.unwrap().into_inner();
    assert_eq!(created.name, "campaigns/nianhuo-2022");
    assert_eq!((created.end_date, created.time_zone.as_str()), (date(2022, 2, 7), "Asia/Shanghai"));
    assert!(!created.etag.is_empty() && created.create_time.is_some());
    let read = app.client.get_campaign(GetCampaignRequest { name: created.name.clone() }).await.unwrap().into_inner();
    assert_eq!(read, created);
    let status = app.client.create_campaign(create("nianhuo-2022", nianhuo())).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);

    // A one-day campaign is fine; an end before the start is not.
    let mut one_day = nianhuo();
    one_day.end_date = one_day.start_date;
    app.client.create_campaign(create("one-day", one_day)).await.unwrap();
}

#[tokio::test]
async fn bad_campaigns_name_every_bad_field() {
    let mut app = spawn_app().await;
    let campaign = Campaign {
        title: Some(LocalizedText::default()),
        organiser: String::new(),
        start_date: date(2022, 2, 30),
        end_date: None,
        time_zone: "Asia/Samarkand-ish".into(),
        ..Default::default()
    };
    let status = app.client.create_campaign(create("Bad Id", campaign)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        [
            "campaign_id",
            "campaign.title.en",
            "campaign.organiser",
            "campaign.start_date",
            "campaign.end_date",
            "campaign.time_zone"
        ]
    );
    let mut backwards = nianhuo();
    backwards.end_date = date(2022, 1, 9);
    let status = app.client.create_campaign(create("backwards", backwards)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["campaign.end_date"]);
}

#[tokio::test]
async fn updates_change_only_the_masked_fields_and_check_the_etag() {
    let mut app = spawn_app().await;
    let created = app.client.create_campaign(create("nianhuo-2022", nianhuo())).await.unwrap().into_inner();
    let change = Campaign {
        name: created.name.clone(),
        organiser: "Ministry of Commerce".into(),
        end_date: date(2022, 2, 10),
        time_zone: "Europe/Moscow".into(),
        etag: created.etag.clone(),
        ..Default::default()
    };
    let updated = app
        .client
        .update_campaign(UpdateCampaignRequest {
            campaign: Some(change.clone()),
            update_mask: Some(FieldMask { paths: vec!["organiser".into(), "end_date".into()] }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.organiser.as_str(), updated.end_date), ("Ministry of Commerce", date(2022, 2, 10)));
    assert_eq!(updated.time_zone, "Asia/Shanghai", "unmasked fields are kept");
    assert_eq!(updated.title, created.title);
    assert_ne!(updated.etag, created.etag);

    // The old etag is stale now.
    let status = app
        .client
        .update_campaign(UpdateCampaignRequest {
            campaign: Some(change),
            update_mask: Some(FieldMask { paths: vec!["organiser".into()] }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);

    // Output-only and unknown paths, and a merged result that breaks a rule.
    let status = app
        .client
        .update_campaign(UpdateCampaignRequest {
            campaign: Some(Campaign { name: created.name.clone(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["etag".into(), "venue".into()] }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask.paths[0]", "update_mask.paths[1]"]);
    let status = app
        .client
        .update_campaign(UpdateCampaignRequest {
            campaign: Some(Campaign { name: created.name.clone(), start_date: date(2022, 3, 1), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["start_date".into()] }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["campaign.end_date"]);
    let read = app.client.get_campaign(GetCampaignRequest { name: created.name }).await.unwrap().into_inner();
    assert_eq!(read, updated, "refused updates changed nothing");
}

#[tokio::test]
async fn campaigns_list_newest_first_across_pages() {
    let mut app = spawn_app().await;
    for (id, year) in
        [("festival-2021", 2021), ("festival-2023", 2023), ("festival-2022", 2022), ("festival-2022b", 2022)]
    {
        let mut campaign = nianhuo();
        campaign.start_date = date(year, 1, 10);
        campaign.end_date = date(year, 2, 7);
        app.client.create_campaign(create(id, campaign)).await.unwrap();
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .client
            .list_campaigns(ListCampaignsRequest { page_size: 3, page_token: token })
            .await
            .unwrap()
            .into_inner();
        names.extend(page.campaigns.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        names,
        ["festival-2023", "festival-2022", "festival-2022b", "festival-2021"].map(|id| format!("campaigns/{id}"))
    );
}
