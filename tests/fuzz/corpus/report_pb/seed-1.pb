ì

kivucdgreat-lakes (:MEXAMPLE - fictional: early warning, rising hate speech before local electionsB
2026-11-10J
2026-11-20R•EXAMPLE - fictional. Every name, place, date and figure in this report is invented for testing.

Ahead of local elections on 15 December, the country team notes a sharp rise in hate speech against a minority community in two (fictional) territories, recruitment drives by a local militia, and the first reported restrictions on gatherings by opposition candidates. No casualties have been reported so far.Z±Incitement on social media and community radio; restrictions on freedom of assembly for opposition candidates; reports of children approached by militia recruiters near schools.b¹The pattern matches the period before the (fictional) 2023 violence in the same territories: incitement, militia mobilisation, then attacks on the minority community around polling day.jhate-speechjrestriction-of-freedomsjrecruitment-of-childrenzp
Fictional Militia BmilitiaPCommunity self-defence militia; recruitment meetings reported in three villages.‚K
minorityÈß";Two territories north of the provincial capital (fictional)š©Regional Quarterly Review discussion; early engagement with electoral authorities and community leaders; monitoring of incitement; child protection messaging in schools.ª3Regional political engagement before the elections.