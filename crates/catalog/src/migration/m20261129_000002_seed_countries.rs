//! Reference data: SCO member states, observers, dialogue partners and the
//! festival's guest nations, with the year each status began.

use sea_orm_migration::prelude::*;

use super::m20261129_000001_create_countries::{Countries, CountryStatuses};

/// (code, zh-CN, en, ru, [(status, since year)], oldest first).
type Row = (&'static str, &'static str, &'static str, &'static str, &'static [(&'static str, i32)]);

const M: &str = "member";
const O: &str = "observer";
const D: &str = "dialogue_partner";
const G: &str = "guest";

pub(crate) const COUNTRIES: &[Row] = &[
    ("AE", "阿拉伯联合酋长国", "United Arab Emirates", "Объединённые Арабские Эмираты", &[(D, 2023)]),
    ("AF", "阿富汗", "Afghanistan", "Афганистан", &[(O, 2012)]),
    ("AM", "亚美尼亚", "Armenia", "Армения", &[(D, 2015)]),
    ("AZ", "阿塞拜疆", "Azerbaijan", "Азербайджан", &[(D, 2015)]),
    ("BH", "巴林", "Bahrain", "Бахрейн", &[(D, 2023)]),
    ("BY", "白俄罗斯", "Belarus", "Беларусь", &[(D, 2010), (O, 2015), (M, 2024)]),
    ("CN", "中国", "China", "Китай", &[(M, 2001)]),
    ("EG", "埃及", "Egypt", "Египет", &[(D, 2022)]),
    ("IN", "印度", "India", "Индия", &[(O, 2005), (M, 2017)]),
    ("IR", "伊朗", "Iran", "Иран", &[(O, 2005), (M, 2023)]),
    ("KG", "吉尔吉斯斯坦", "Kyrgyzstan", "Киргизия", &[(M, 2001)]),
    ("KH", "柬埔寨", "Cambodia", "Камбоджа", &[(D, 2015)]),
    ("KW", "科威特", "Kuwait", "Кувейт", &[(D, 2023)]),
    ("KZ", "哈萨克斯坦", "Kazakhstan", "Казахстан", &[(M, 2001)]),
    ("LA", "老挝", "Laos", "Лаос", &[(D, 2024)]),
    ("LK", "斯里兰卡", "Sri Lanka", "Шри-Ланка", &[(D, 2009)]),
    ("MM", "缅甸", "Myanmar", "Мьянма", &[(D, 2023)]),
    ("MN", "蒙古国", "Mongolia", "Монголия", &[(O, 2004)]),
    ("MV", "马尔代夫", "Maldives", "Мальдивы", &[(D, 2023)]),
    ("MY", "马来西亚", "Malaysia", "Малайзия", &[(G, 2022)]),
    ("NP", "尼泊尔", "Nepal", "Непал", &[(D, 2015)]),
    ("PK", "巴基斯坦", "Pakistan", "Пакистан", &[(O, 2005), (M, 2017)]),
    ("QA", "卡塔尔", "Qatar", "Катар", &[(D, 2022)]),
    ("RU", "俄罗斯", "Russia", "Россия", &[(M, 2001)]),
    ("SA", "沙特阿拉伯", "Saudi Arabia", "Саудовская Аравия", &[(D, 2022)]),
    ("TH", "泰国", "Thailand", "Таиланд", &[(G, 2022)]),
    ("TJ", "塔吉克斯坦", "Tajikistan", "Таджикистан", &[(M, 2001)]),
    ("TR", "土耳其", "Türkiye", "Турция", &[(D, 2012)]),
    ("UZ", "乌兹别克斯坦", "Uzbekistan", "Узбекистан", &[(M, 2001)]),
];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut countries = Query::insert()
            .into_table(Countries::Table)
            .columns([Countries::Code, Countries::NameZhCn, Countries::NameEn, Countries::NameRu])
            .to_owned();
        let mut statuses = Query::insert()
            .into_table(CountryStatuses::Table)
            .columns([CountryStatuses::CountryCode, CountryStatuses::SinceYear, CountryStatuses::Status])
            .to_owned();
        for &(code, zh, en, ru, history) in COUNTRIES {
            countries.values([code.into(), zh.into(), en.into(), ru.into()]).map_err(query_error)?;
            for &(status, year) in history {
                statuses.values([code.into(), year.into(), status.into()]).map_err(query_error)?;
            }
        }
        manager.exec_stmt(countries).await?;
        manager.exec_stmt(statuses).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.exec_stmt(Query::delete().from_table(CountryStatuses::Table).to_owned()).await?;
        manager.exec_stmt(Query::delete().from_table(Countries::Table).to_owned()).await
    }
}

fn query_error(e: sea_query::error::Error) -> DbErr {
    DbErr::Migration(e.to_string())
}
